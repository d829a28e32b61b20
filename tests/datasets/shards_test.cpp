// Packed shards: bit-exact round trip against cv::imread, checksum failures named by file,
// skip_corrupt accounting, and resuming an interrupted pack.
#include "datasets/shards.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "datasets/registry.h"
#include "harness/check.h"
#include "tests/datasets/test_data.h"
#include "tests/support/catch.h"

using namespace ablate;
using namespace ablate::test;

namespace {

// The first `per_class` images of every class of an opened dataset.
DatasetIndex first_per_class(const DatasetIndex& idx, int per_class) {
  std::vector<int64_t> pick;
  std::vector<int> taken(idx.classes.size(), 0);
  for (size_t i = 0; i < idx.files.size(); ++i)
    if (taken[static_cast<size_t>(idx.labels[i])]++ < per_class) pick.push_back(static_cast<int64_t>(i));
  return idx.subset(pick);
}

// cv::imread (optionally INTER_AREA-resized to side) as RGB HWC bytes.
std::vector<uint8_t> reference_rgb(const fs::path& p, int side) {
  cv::Mat bgr = cv::imread(p.string(), cv::IMREAD_COLOR), sized, rgb;
  if (bgr.rows != side || bgr.cols != side)
    cv::resize(bgr, sized, cv::Size(side, side), 0, 0, cv::INTER_AREA);
  else
    sized = bgr;
  cv::cvtColor(sized, rgb, cv::COLOR_BGR2RGB);
  return {rgb.data, rgb.data + rgb.total() * 3};
}

void flip_byte(const fs::path& p, std::streamoff at) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x01);
  f.seekp(at);
  f.write(&c, 1);
}

nlohmann::json read_manifest(const fs::path& dir) {
  std::ifstream in(dir / "manifest.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("packing 200 EuroSAT images reads back bit-exact", "[datasets][shards]") {
  if (!have_data("eurosat_rgb")) ABLATE_SKIP("no shared EuroSAT at " << data_root());
  TempDir tmp("pack-eurosat");
  const DatasetIndex idx = first_per_class(open_dataset("eurosat", data_root()), 20);
  REQUIRE(idx.files.size() == 200);
  PackOptions opts;
  opts.out = tmp.path;
  opts.size = 64;
  opts.images_per_shard = 64;
  const PackResult r = pack_index(idx, opts);
  CHECK(r.packed == 200);
  CHECK(r.shards == 4);  // 64 + 64 + 64 + 8
  CHECK(r.skipped == 0);

  const ShardSet set = ShardSet::open(tmp.path, /*verify=*/true);
  REQUIRE(set.size() == 200);
  CHECK(set.classes() == idx.classes);
  CHECK(set.paths() == idx.files);
  CHECK(set.labels() == idx.labels);
  CHECK(set.dataset() == "eurosat");
  std::vector<uint8_t> hwc(set.image_bytes());
  for (size_t i = 0; i < set.size(); ++i) {
    set.read(i, hwc.data());
    REQUIRE(hwc == reference_rgb(idx.path(i), 64));
    // Planar copy: channel c of pixel p.
    const uint8_t* chw = set.chw(i);
    REQUIRE(chw[1 * 64 * 64 + 100] == hwc[100 * 3 + 1]);
  }
  const auto m = read_manifest(tmp.path);
  CHECK(m["count"] == 200);
  CHECK(m["shards"].size() == 4);
  CHECK(m["shards"][3]["count"] == 8);
  CHECK(m["split"]["train_ratios"] == nlohmann::json::array({0.8}));
}

TEST_CASE("UC Merced images are area-resized when packed smaller", "[datasets][shards]") {
  if (!have_data("ucmerced")) ABLATE_SKIP("no shared UC Merced at " << data_root());
  TempDir tmp("pack-ucm");
  const DatasetIndex idx = first_per_class(open_dataset("ucmerced", data_root()), 2);
  PackOptions opts;
  opts.out = tmp.path;
  opts.size = 64;
  pack_index(idx, opts);
  const ShardSet set = ShardSet::open(tmp.path, true);
  REQUIRE(set.size() == 42);
  std::vector<uint8_t> hwc(set.image_bytes());
  for (size_t i = 0; i < set.size(); ++i) {
    set.read(i, hwc.data());
    REQUIRE(hwc == reference_rgb(idx.path(i), 64));
  }
}

TEST_CASE("a flipped shard byte is reported with the shard's name", "[datasets][shards]") {
  TempDir tmp("corrupt");
  write_synthetic_classes(tmp.path / "src", 2, 10, 8, 5);
  PackOptions opts;
  opts.out = tmp.path / "packed";
  opts.size = 8;
  opts.images_per_shard = 6;
  pack_index(open_folder(tmp.path / "src"), opts);
  REQUIRE_NOTHROW(ShardSet::open(opts.out, true));

  flip_byte(opts.out / "shard-00002.u8", 77);
  std::string msg = error_of([&] { ShardSet::open(opts.out, /*verify=*/true); });
  CHECK(msg.find("shard-00002.u8") != std::string::npos);
  CHECK(msg.find("SHA-256") != std::string::npos);
  CHECK_NOTHROW(ShardSet::open(opts.out, /*verify=*/false));  // size intact: only hashing sees it

  fs::resize_file(opts.out / "shard-00001.u8", 100);
  msg = error_of([&] { ShardSet::open(opts.out, false); });
  CHECK(msg.find("shard-00001.u8") != std::string::npos);

  flip_byte(opts.out / "labels.i32", 3);
  msg = error_of([&] { ShardSet::open(opts.out, false); });
  CHECK(msg.find("labels.i32") != std::string::npos);
}

TEST_CASE("corrupt source images fail the pack, or are skipped and counted", "[datasets][shards]") {
  TempDir tmp("skip");
  const fs::path src = tmp.path / "src";
  write_synthetic_classes(src, 2, 3, 8, 9);
  // A JPEG cut in half: OpenCV alone would decode it with a grey bottom.
  RgbImage img;
  img.height = img.width = 32;
  img.pixels.assign(32 * 32 * 3, 90);
  write_image(tmp.path / "full.jpg", img);
  std::vector<char> bytes(fs::file_size(tmp.path / "full.jpg"));
  std::ifstream(tmp.path / "full.jpg", std::ios::binary)
      .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::ofstream(src / "class1" / "broken.jpg", std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));

  PackOptions opts;
  opts.out = tmp.path / "packed";
  opts.size = 8;
  const DatasetIndex idx = open_folder(src);
  REQUIRE(idx.files.size() == 7);
  const std::string msg = error_of([&] { pack_index(idx, opts); });
  CHECK(msg.find((src / "class1" / "broken.jpg").string()) != std::string::npos);

  opts.skip_corrupt = true;
  const PackResult r = pack_index(idx, opts);
  CHECK(r.packed == 6);
  CHECK(r.skipped == 1);
  CHECK(r.skipped_files == std::vector<std::string>{"class1/broken.jpg"});
  const ShardSet set = ShardSet::open(opts.out, true);
  CHECK(set.size() == 6);
  CHECK(std::find(set.paths().begin(), set.paths().end(), "class1/broken.jpg") == set.paths().end());
  CHECK(set.labels() == std::vector<int32_t>{0, 0, 0, 1, 1, 1});
  CHECK(read_manifest(opts.out)["skipped"][0]["path"] == "class1/broken.jpg");
}

TEST_CASE("an interrupted pack resumes from its last good shard", "[datasets][shards]") {
  TempDir tmp("resume");
  write_synthetic_classes(tmp.path / "src", 3, 7, 8, 3);
  PackOptions opts;
  opts.out = tmp.path / "packed";
  opts.size = 8;
  opts.images_per_shard = 5;  // 21 images: 5 shards
  const DatasetIndex idx = open_folder(tmp.path / "src");
  const PackResult first = pack_index(idx, opts);
  REQUIRE(first.shards == 5);
  const std::string fingerprint = ShardSet::open(opts.out, true).fingerprint();

  // As if killed while writing shard 3: manifest incomplete, shard 3 damaged, shard 4 never written.
  auto m = read_manifest(opts.out);
  m["complete"] = false;
  m["shards"].erase(4);
  std::ofstream(opts.out / "manifest.json") << m.dump();
  fs::remove(opts.out / "shard-00004.u8");
  flip_byte(opts.out / "shard-00003.u8", 0);
  CHECK(error_of([&] { ShardSet::open(opts.out, true); }).find("interrupted") != std::string::npos);

  const PackResult resumed = pack_index(idx, opts);
  CHECK(resumed.shards_reused == 3);
  CHECK(resumed.shards == 5);
  const ShardSet set = ShardSet::open(opts.out, true);
  CHECK(set.fingerprint() == fingerprint);

  // Packing again with all shards intact reuses everything; other settings start over.
  CHECK(pack_index(idx, opts).shards_reused == 5);
  opts.images_per_shard = 4;
  CHECK(pack_index(idx, opts).shards_reused == 0);
  CHECK(ShardSet::open(opts.out, true).size() == 21);
  CHECK(fs::exists(opts.out / "shard-00005.u8"));  // 21 / 4 -> 6 shards, 00000..00005
  CHECK_FALSE(fs::exists(opts.out / "shard-00006.u8"));
}

TEST_CASE("opening a folder that was never packed says how to pack it", "[datasets][shards]") {
  TempDir tmp("unpacked");
  const std::string msg = error_of([&] { ShardSet::open(tmp.path, true); });
  CHECK(msg.find("ablate data pack") != std::string::npos);
  CHECK(msg.find(tmp.path.string()) != std::string::npos);
}
