// Image decoding: agreement with cv::imread, channel conversions, and the errors for truncated,
// corrupt, 16-bit and missing files.
#include "datasets/image_io.h"

#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "harness/check.h"
#include "tests/datasets/test_data.h"
#include "tests/support/catch.h"

using namespace ablate;
using namespace ablate::test;

namespace {

std::vector<uint8_t> file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& p, const uint8_t* data, size_t n) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
}

// cv::imread of `p` as RGB bytes.
std::vector<uint8_t> imread_rgb(const fs::path& p) {
  cv::Mat bgr = cv::imread(p.string(), cv::IMREAD_COLOR), rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return {rgb.data, rgb.data + rgb.total() * 3};
}

const char* kEuroSat = "eurosat_rgb/Forest/Forest_1.jpg";

}  // namespace

TEST_CASE("decoded JPEGs equal cv::imread", "[datasets][image_io]") {
  if (!have_data("eurosat_rgb") || !have_data("ucmerced")) ABLATE_SKIP("no shared data at " << data_root());
  for (const fs::path& p : {data_root() / kEuroSat, data_root() / "ucmerced/harbor/harbor07.jpg"}) {
    const RgbImage img = read_image(p);
    const cv::Mat ref = cv::imread(p.string());
    CHECK(img.height == ref.rows);
    CHECK(img.width == ref.cols);
    CHECK(img.pixels == imread_rgb(p));
  }
}

TEST_CASE("a truncated JPEG is an error naming the file", "[datasets][image_io]") {
  if (!have_data("eurosat_rgb")) ABLATE_SKIP("no shared EuroSAT at " << data_root());
  TempDir tmp("truncated");
  const std::vector<uint8_t> bytes = file_bytes(data_root() / kEuroSat);
  REQUIRE(jpeg_complete(bytes));
  for (size_t cut : {bytes.size() / 4, bytes.size() / 2, bytes.size() - 2}) {
    INFO("cut at " << cut << " of " << bytes.size());
    const fs::path p = tmp.path / ("cut" + std::to_string(cut) + ".jpg");
    write_bytes(p, bytes.data(), cut);
    CHECK_FALSE(jpeg_complete(std::span(bytes.data(), cut)));
    const std::string msg = error_of([&] { read_image(p); });
    CHECK(msg.find(p.string()) != std::string::npos);
    CHECK(msg.find("truncated") != std::string::npos);
  }
}

TEST_CASE("every shipped JPEG of a class passes the completeness check", "[datasets][image_io]") {
  if (!have_data("ucmerced")) ABLATE_SKIP("no shared UC Merced at " << data_root());
  for (auto& e : fs::directory_iterator(data_root() / "ucmerced/airplane"))
    CHECK(jpeg_complete(file_bytes(e.path())));
}

TEST_CASE("grey and RGBA images become RGB explicitly", "[datasets][image_io]") {
  TempDir tmp("channels");
  cv::Mat grey(2, 3, CV_8UC1);
  for (int i = 0; i < 6; ++i) grey.data[i] = static_cast<uint8_t>(40 * i);
  cv::imwrite((tmp.path / "g.png").string(), grey);
  RgbImage g = read_image(tmp.path / "g.png");
  REQUIRE(g.pixels.size() == 18);
  for (int i = 0; i < 6; ++i)
    for (int c = 0; c < 3; ++c) CHECK(g.pixels[static_cast<size_t>(i * 3 + c)] == 40 * i);

  cv::Mat bgra(1, 2, CV_8UC4);
  bgra.at<cv::Vec4b>(0, 0) = {10, 20, 30, 0};  // B G R A: fully transparent, alpha ignored
  bgra.at<cv::Vec4b>(0, 1) = {1, 2, 3, 255};
  cv::imwrite((tmp.path / "a.png").string(), bgra);
  RgbImage a = read_image(tmp.path / "a.png");
  CHECK(a.pixels == std::vector<uint8_t>{30, 20, 10, 3, 2, 1});
}

TEST_CASE("16-bit images, garbage and missing files are rejected with the path", "[datasets][image_io]") {
  TempDir tmp("reject");
  cv::Mat deep(4, 4, CV_16UC3, cv::Scalar(1000, 2000, 3000));
  cv::imwrite((tmp.path / "deep.png").string(), deep);
  std::string msg = error_of([&] { read_image(tmp.path / "deep.png"); });
  CHECK(msg.find("deep.png") != std::string::npos);
  CHECK(msg.find("16-bit") != std::string::npos);

  const uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8};
  write_bytes(tmp.path / "junk.jpg", junk, sizeof junk);
  msg = error_of([&] { read_image(tmp.path / "junk.jpg"); });
  CHECK(msg.find("junk.jpg") != std::string::npos);

  msg = error_of([&] { read_image(tmp.path / "nope.png"); });
  CHECK(msg.find("nope.png") != std::string::npos);
}

TEST_CASE("resize_square shrinks with INTER_AREA", "[datasets][image_io]") {
  if (!have_data("ucmerced")) ABLATE_SKIP("no shared UC Merced at " << data_root());
  const fs::path p = data_root() / "ucmerced/forest/forest10.jpg";
  const RgbImage img = read_image(p);
  std::vector<uint8_t> out(64 * 64 * 3);
  resize_square(img, 64, out.data());
  cv::Mat bgr = cv::imread(p.string()), small, rgb;
  cv::resize(bgr, small, cv::Size(64, 64), 0, 0, cv::INTER_AREA);
  cv::cvtColor(small, rgb, cv::COLOR_BGR2RGB);
  CHECK(out == std::vector<uint8_t>(rgb.data, rgb.data + rgb.total() * 3));
}
