// Stratified seeded splits: determinism, seed sensitivity, per-class counts, and the split hash.
#include "datasets/split.h"

#include <algorithm>
#include <map>
#include <set>

#include "datasets/registry.h"
#include "harness/hash.h"
#include "tests/datasets/test_data.h"
#include "tests/support/catch.h"

using namespace ablate;
using namespace ablate::test;

namespace {

// Classes of 10, 25 and 7 files, class-major like an opened dataset.
void three_classes(std::vector<std::string>& files, std::vector<int32_t>& labels) {
  const int sizes[3] = {10, 25, 7};
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < sizes[c]; ++i) {
      std::string f = "c";
      f += std::to_string(c);
      f += "/img";
      f += std::to_string(i);
      f += ".jpg";
      files.push_back(f);
      labels.push_back(c);
    }
}

std::map<int32_t, int> per_class(const std::vector<int64_t>& idx, const std::vector<int32_t>& labels) {
  std::map<int32_t, int> n;
  for (int64_t i : idx) ++n[labels[static_cast<size_t>(i)]];
  return n;
}

}  // namespace

TEST_CASE("seeded_permutation is a permutation and depends on the seed", "[datasets][split]") {
  const std::vector<int64_t> a = seeded_permutation(1000, 7), b = seeded_permutation(1000, 7),
                             c = seeded_permutation(1000, 8);
  CHECK(a == b);
  CHECK(a != c);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) REQUIRE(sorted[static_cast<size_t>(i)] == i);
  std::mt19937_64 rng(3);
  for (int k = 0; k < 1000; ++k) REQUIRE(uniform_below(rng, 7) < 7);
}

TEST_CASE("splits are stratified and deterministic per seed", "[datasets][split]") {
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  three_classes(files, labels);
  const Split s1 = make_split(files, labels, 0.8, 1), s1b = make_split(files, labels, 0.8, 1),
              s2 = make_split(files, labels, 0.8, 2);
  CHECK(s1.train == s1b.train);
  CHECK(s1.val == s1b.val);
  CHECK(s1.hash == s1b.hash);
  CHECK(s1.train != s2.train);
  CHECK(s1.hash != s2.hash);
  // round(0.8 * n): 8 of 10, 20 of 25, 6 of 7 (5.6 rounds up).
  CHECK(per_class(s1.train, labels) == std::map<int32_t, int>{{0, 8}, {1, 20}, {2, 6}});
  CHECK(per_class(s2.train, labels) == std::map<int32_t, int>{{0, 8}, {1, 20}, {2, 6}});
  CHECK(per_class(s1.val, labels) == std::map<int32_t, int>{{0, 2}, {1, 5}, {2, 1}});
  // Disjoint and complete.
  std::set<int64_t> all(s1.train.begin(), s1.train.end());
  for (int64_t v : s1.val) CHECK(all.insert(v).second);
  CHECK(all.size() == files.size());
}

TEST_CASE("the split depends on the file names, not their listing order", "[datasets][split]") {
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  three_classes(files, labels);
  const Split s = make_split(files, labels, 0.5, 11);
  std::vector<size_t> order(files.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;  // reversed listing
  std::vector<std::string> rf;
  std::vector<int32_t> rl;
  for (size_t i : order) {
    rf.push_back(files[i]);
    rl.push_back(labels[i]);
  }
  const Split r = make_split(rf, rl, 0.5, 11);
  std::set<std::string> a, b;
  for (int64_t i : s.train) a.insert(files[static_cast<size_t>(i)]);
  for (int64_t i : r.train) b.insert(rf[static_cast<size_t>(i)]);
  CHECK(a == b);
  CHECK(s.hash == r.hash);
}

TEST_CASE("split_hash is the SHA-256 of the sorted train and val lists", "[datasets][split]") {
  const std::vector<std::string> files = {"b.jpg", "a.jpg"};
  const Split s = make_split(files, {0, 0}, 0.5, 0);
  REQUIRE(s.train.size() == 1);
  const std::string tr = files[static_cast<size_t>(s.train[0])], va = files[static_cast<size_t>(s.val[0])];
  CHECK(s.hash == sha256_hex("train\n" + tr + "\nval\n" + va + "\n"));
}

TEST_CASE("EuroSAT 80/20 split has the protocol's per-class counts", "[datasets][split]") {
  if (!have_data("eurosat_rgb")) ABLATE_SKIP("no shared EuroSAT at " << data_root());
  const DatasetIndex idx = open_dataset("eurosat", data_root());
  const Split s = make_split(idx.files, idx.labels, 0.8, 0);
  CHECK(s.train.size() == 21600);
  CHECK(s.val.size() == 5400);
  const auto n = per_class(s.train, idx.labels);
  CHECK(n.at(0) == 2400);  // AnnualCrop 3000
  CHECK(n.at(5) == 1600);  // Pasture 2000
  CHECK(n.at(3) == 2000);  // Highway 2500
}
