// Corpus construction: seeded sub-image crops (pixels equal the source region) and pHash
// near-duplicate detection on real images and their re-encoded copies.
#include "datasets/construct.h"

#include <regex>

#include "datasets/image_io.h"
#include "tests/datasets/test_data.h"
#include "tests/support/catch.h"

using namespace ablate;
using namespace ablate::test;

namespace {

// `img` written as a JPEG of `quality` and read back.
RgbImage recompressed(const RgbImage& img, const fs::path& tmp, int quality) {
  fs::path p = tmp / "q";
  p += std::to_string(quality);
  p += ".jpg";
  write_image(p, img, quality);
  return read_image(p);
}

}  // namespace

TEST_CASE("hamming_distance counts differing bits", "[datasets][construct]") {
  CHECK(hamming_distance(0, 0) == 0);
  CHECK(hamming_distance(0b1011, 0b0001) == 2);
  CHECK(hamming_distance(~uint64_t{0}, 0) == 64);
}

TEST_CASE("duplicate_groups links hashes within the threshold transitively", "[datasets][construct]") {
  // 0 -- 1 bit -- 1; 3 is 1 bit from 1 (2 bits from 0); 0xF0F0 and 0xF0F1 pair; 0xFFFF0000 alone.
  const std::vector<uint64_t> h = {0x0, 0x1, 0xF0F0, 0x3, 0xFFFF0000, 0xF0F1};
  CHECK(duplicate_groups(h, 1) == std::vector<std::vector<size_t>>{{0, 1, 3}, {2, 5}});
  CHECK(duplicate_groups(h, 0).empty());
}

TEST_CASE("pHash: a JPEG-recompressed copy is a near duplicate, other images are not",
          "[datasets][construct]") {
  if (!have_data("eurosat_rgb") || !have_data("ucmerced")) ABLATE_SKIP("no shared data at " << data_root());
  TempDir tmp("phash");
  const std::vector<fs::path> files = {
      data_root() / "ucmerced/harbor/harbor07.jpg", data_root() / "ucmerced/forest/forest10.jpg",
      data_root() / "ucmerced/runway/runway03.jpg", data_root() / "eurosat_rgb/Highway/Highway_12.jpg",
      data_root() / "eurosat_rgb/Residential/Residential_40.jpg"};
  std::vector<uint64_t> hashes;
  for (auto& f : files) {
    const RgbImage img = read_image(f);
    hashes.push_back(phash64(img));
    INFO(f);
    CHECK(hamming_distance(hashes.back(), phash64(recompressed(img, tmp.path, 60))) <= 6);
  }
  for (size_t a = 0; a < hashes.size(); ++a)
    for (size_t b = a + 1; b < hashes.size(); ++b) {
      INFO(files[a] << " vs " << files[b]);
      CHECK(hamming_distance(hashes[a], hashes[b]) > 10);
    }

  // find_duplicates on files: the copy of image 1 joins it, nothing else groups.
  std::vector<fs::path> with_copy = files;
  write_image(tmp.path / "copy.jpg", read_image(files[1]), 70);
  with_copy.push_back(tmp.path / "copy.jpg");
  CHECK(find_duplicates(with_copy, 10, 2) == std::vector<std::vector<size_t>>{{1, 5}});
}

TEST_CASE("sub-image crops are seeded and copy the source region", "[datasets][construct]") {
  if (!have_data("ucmerced")) ABLATE_SKIP("no shared UC Merced at " << data_root());
  TempDir tmp("crops");
  const std::vector<fs::path> inputs = {data_root() / "ucmerced/airplane/airplane00.jpg",
                                        data_root() / "ucmerced/beach/beach05.jpg"};
  SubimageOptions o;
  o.min_side = 32;
  o.max_side = 96;
  o.per_image = 3;
  o.seed = 1;
  const SubimageResult r = crop_subimages(inputs, tmp.path / "a", o);
  REQUIRE(r.written.size() == 6);
  const std::regex name(R"((\w+)_(\d)_y(\d+)_x(\d+)_s(\d+)\.png)");
  for (size_t k = 0; k < r.written.size(); ++k) {
    std::smatch m;
    const std::string fname = r.written[k].filename().string();
    REQUIRE(std::regex_match(fname, m, name));
    const int top = std::stoi(m[3]), left = std::stoi(m[4]), side = std::stoi(m[5]);
    CHECK((side >= 32 && side <= 96));
    const RgbImage crop = read_image(r.written[k]), src = read_image(inputs[k / 3]);
    REQUIRE(crop.height == side);
    REQUIRE(crop.width == side);
    CHECK(top + side <= src.height);
    CHECK(left + side <= src.width);
    for (int y : {0, side / 2, side - 1})
      for (int x : {0, side - 1})
        for (int c = 0; c < 3; ++c)
          CHECK(crop.pixels[static_cast<size_t>((y * side + x) * 3 + c)] ==
                src.pixels[static_cast<size_t>(((top + y) * src.width + left + x) * 3 + c)]);
  }
  const SubimageResult again = crop_subimages(inputs, tmp.path / "b", o);
  o.seed = 2;
  const SubimageResult other = crop_subimages(inputs, tmp.path / "c", o);
  for (size_t k = 0; k < 6; ++k) CHECK(again.written[k].filename() == r.written[k].filename());
  bool differs = false;
  for (size_t k = 0; k < 6; ++k) differs |= other.written[k].filename() != r.written[k].filename();
  CHECK(differs);

  o.min_side = 300;  // larger than the 256 px images
  o.max_side = 400;
  const SubimageResult none = crop_subimages(inputs, tmp.path / "d", o);
  CHECK(none.written.empty());
  CHECK(none.too_small == 2);
}
