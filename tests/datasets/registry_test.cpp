// Registry tables, and opening datasets: the shipped EuroSAT / UC Merced copies against the counts
// published in shared/data/README.md, and the errors for missing or mismatching data.
#include "datasets/registry.h"

#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include "harness/check.h"
#include "tests/datasets/test_data.h"
#include "tests/support/catch.h"

using namespace ablate;
using namespace ablate::test;

TEST_CASE("registry entries are internally consistent", "[datasets][registry]") {
  std::set<std::string> names;
  for (const DatasetSpec& s : dataset_registry()) {
    INFO(s.name);
    CHECK(names.insert(s.name).second);
    if (s.layout == DatasetLayout::Corpus) continue;
    const std::set<std::string> unique(s.classes.begin(), s.classes.end());
    CHECK(unique.size() == s.classes.size());
    if (!s.class_counts.empty()) {
      CHECK(s.class_counts.size() == s.classes.size());
      CHECK(std::accumulate(s.class_counts.begin(), s.class_counts.end(), int64_t{0}) == s.expected_count);
    }
    REQUIRE(!s.train_ratios.empty());
    for (double r : s.train_ratios) CHECK((r > 0 && r < 1));
  }
  // Published sizes (dataset papers).
  CHECK(dataset_spec("eurosat").classes.size() == 10);
  CHECK(dataset_spec("eurosat").expected_count == 27000);
  CHECK(dataset_spec("ucmerced").classes.size() == 21);
  CHECK(dataset_spec("ucmerced").expected_count == 2100);
  CHECK(dataset_spec("aid").classes.size() == 30);
  CHECK(dataset_spec("aid").expected_count == 10000);
  CHECK(dataset_spec("aid").train_ratios == std::vector<double>{0.2, 0.5});
  CHECK(dataset_spec("resisc45").classes.size() == 45);
  CHECK(dataset_spec("resisc45").expected_count == 45 * 700);
  CHECK(dataset_spec("resisc45").train_ratios == std::vector<double>{0.1, 0.2});
  CHECK(dataset_spec("whu_rs19").classes.size() == 19);
  CHECK(dataset_spec("whu_rs19").expected_count == 1005);
  for (auto corpus : {"millionaid", "opticalrs13m", "fmow_rgb"})
    CHECK(dataset_spec(corpus).layout == DatasetLayout::Corpus);
}

TEST_CASE("an unknown dataset name lists the known ones", "[datasets][registry]") {
  const std::string msg = error_of([] { dataset_spec("imagenet"); });
  CHECK(msg.find("imagenet") != std::string::npos);
  CHECK(msg.find("eurosat") != std::string::npos);
  CHECK(msg.find("resisc45") != std::string::npos);
}

TEST_CASE("shipped EuroSAT matches the counts in the data README", "[datasets][registry]") {
  if (!have_data("eurosat_rgb")) ABLATE_SKIP("no shared EuroSAT at " << data_root());
  const DatasetIndex idx = open_dataset("eurosat", data_root());
  REQUIRE(idx.files.size() == 27000);
  // shared/data/README.md: AnnualCrop 3000, Forest 3000, ..., SeaLake 3000.
  const std::map<std::string, int> readme = {
      {"AnnualCrop", 3000}, {"Forest", 3000},  {"HerbaceousVegetation", 3000}, {"Highway", 2500},
      {"Industrial", 2500}, {"Pasture", 2000}, {"PermanentCrop", 2500},        {"Residential", 3000},
      {"River", 2500},      {"SeaLake", 3000}};
  std::map<std::string, int> counted;
  for (size_t i = 0; i < idx.files.size(); ++i) {
    const std::string& cls = idx.classes.at(static_cast<size_t>(idx.labels[i]));
    ++counted[cls];
    // The label is the folder the file lives in.
    CHECK(idx.files[i].substr(0, cls.size() + 1) == cls + "/");
  }
  CHECK(counted == readme);
  CHECK(std::is_sorted(idx.labels.begin(), idx.labels.end()));
}

TEST_CASE("shipped UC Merced has 21 classes of 100", "[datasets][registry]") {
  if (!have_data("ucmerced")) ABLATE_SKIP("no shared UC Merced at " << data_root());
  const DatasetIndex idx = open_dataset("ucmerced", data_root());
  REQUIRE(idx.files.size() == 2100);
  std::vector<int> counts(21, 0);
  for (int32_t l : idx.labels) ++counts.at(static_cast<size_t>(l));
  CHECK(counts == std::vector<int>(21, 100));
  CHECK(idx.classes.front() == "agricultural");
  CHECK(idx.files.front() == "agricultural/agricultural00.jpg");
}

TEST_CASE("a missing dataset says where ablate looked and how to provide it", "[datasets][registry]") {
  TempDir tmp("missing");
  const std::string msg = error_of([&] { open_dataset("aid", tmp.path); });
  CHECK(msg.find((tmp.path / "aid").string()) != std::string::npos);
  CHECK(msg.find("data.root") != std::string::npos);
  CHECK(msg.find("AID") != std::string::npos);
}

TEST_CASE("class folders or counts that differ from the registry are reported", "[datasets][registry]") {
  TempDir tmp("mismatch");
  write_synthetic_classes(tmp.path / "mini", 2, 3, 4, 1);  // class0, class1 with 3 images each
  DatasetSpec spec = unregistered_spec(tmp.path / "mini");
  spec.classes = {"Class_0", "CLASS1"};  // case and separators differ from the folders: accepted
  spec.class_counts = {3, 3};
  spec.expected_count = 6;
  const DatasetIndex ok = open_dataset(spec, tmp.path);
  CHECK(ok.files.size() == 6);
  CHECK(ok.classes == spec.classes);

  spec.class_counts = {3, 4};
  std::string msg = error_of([&] { open_dataset(spec, tmp.path); });
  CHECK(msg.find("CLASS1") != std::string::npos);
  CHECK(msg.find("has 3 images") != std::string::npos);

  spec.class_counts = {};
  spec.classes = {"class0"};
  msg = error_of([&] { open_dataset(spec, tmp.path); });
  CHECK(msg.find("unexpected [class1]") != std::string::npos);

  spec.classes = {"class0", "class1", "class2"};
  msg = error_of([&] { open_dataset(spec, tmp.path); });
  CHECK(msg.find("missing [class2]") != std::string::npos);
}

TEST_CASE("manifest corpora: labels by class name, or unlabelled", "[datasets][registry]") {
  TempDir tmp("manifest");
  {
    std::ofstream m(tmp.path / "manifest.txt");
    m << "# comment\n"
      << "b/x 1.jpg\n"  // a path with a space and no label
      << "a/y.png\n";
  }
  DatasetIndex idx = open_folder(tmp.path);
  CHECK(idx.files == std::vector<std::string>{"b/x 1.jpg", "a/y.png"});
  CHECK(idx.labels == std::vector<int32_t>{-1, -1});
  CHECK(idx.classes.empty());

  {
    std::ofstream m(tmp.path / "manifest.txt");
    m << "s1/b.jpg\tzebra\n"
      << "s1/a.jpg ant\n"
      << "s2/c.jpg\tzebra\n";
  }
  idx = open_folder(tmp.path);
  CHECK(idx.classes == std::vector<std::string>{"ant", "zebra"});
  CHECK(idx.files == std::vector<std::string>{"s1/a.jpg", "s1/b.jpg", "s2/c.jpg"});
  CHECK(idx.labels == std::vector<int32_t>{0, 1, 1});

  {
    std::ofstream m(tmp.path / "manifest.txt");
    m << "a.jpg\tcat\n"
      << "b.jpg\n";
  }
  const std::string msg = error_of([&] { open_folder(tmp.path); });
  CHECK(msg.find("manifest.txt:2") != std::string::npos);
}
