// Image decoding with OpenCV plus the checks OpenCV does not make (see image_io.h).
#include "datasets/image_io.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string_view>

#include "ablate/build_info.h"
#include "harness/check.h"

#if ABLATE_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

namespace ablate {

bool jpeg_complete(std::span<const uint8_t> b) {
  const size_t n = b.size();
  if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return false;
  size_t pos = 2;
  while (pos < n) {
    // Find the next marker; libjpeg tolerates stray bytes between segments, so skip them too.
    while (pos < n && b[pos] != 0xFF) ++pos;
    while (pos < n && b[pos] == 0xFF) ++pos;  // fill bytes
    if (pos >= n) return false;
    const uint8_t m = b[pos++];
    if (m == 0xD9) return true;                           // EOI
    if ((m >= 0xD0 && m <= 0xD7) || m == 0x01) continue;  // RSTn, TEM: no length
    if (pos + 2 > n) return false;
    const size_t len = (size_t{b[pos]} << 8) | b[pos + 1];
    if (len < 2 || pos + len > n) return false;
    pos += len;
    if (m == 0xDA) {
      // Entropy-coded data: 0xFF is followed by a stuffed 0x00 or RSTn inside it; anything else
      // is the next marker.
      while (pos + 1 < n &&
             !(b[pos] == 0xFF && b[pos + 1] != 0x00 && (b[pos + 1] < 0xD0 || b[pos + 1] > 0xD7)))
        ++pos;
      if (pos + 1 >= n) return false;
    }
  }
  return false;
}

#if ABLATE_HAVE_OPENCV

namespace {

bool has_prefix(std::span<const uint8_t> b, std::string_view magic) {
  return b.size() >= magic.size() && std::memcmp(b.data(), magic.data(), magic.size()) == 0;
}

// A PNG ends with an IEND chunk; a truncated one does not contain it.
bool png_complete(std::span<const uint8_t> b) {
  std::string_view s(reinterpret_cast<const char*>(b.data()), b.size());
  return s.rfind("IEND") != std::string_view::npos;
}

}  // namespace

bool image_decoding_available() { return true; }

RgbImage decode_image(std::span<const uint8_t> bytes, const std::string& name) {
  if (bytes.empty()) throw DataError(fmt::format("{}: empty file", name));
  if (has_prefix(bytes, "\xFF\xD8\xFF") && !jpeg_complete(bytes))
    throw DataError(fmt::format("{}: truncated or corrupt JPEG (no end-of-image marker)", name));
  if (has_prefix(bytes, "\x89PNG") && !png_complete(bytes))
    throw DataError(fmt::format("{}: truncated PNG (no IEND chunk)", name));
  cv::Mat raw;
  try {
    const cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data()));
    raw = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw DataError(fmt::format("{}: cannot decode: {}", name, e.what()));
  }
  if (raw.empty()) throw DataError(fmt::format("{}: cannot decode (corrupt or unsupported format)", name));
  if (raw.depth() != CV_8U)
    throw DataError(
        fmt::format("{}: {}-bit{} image; ablate reads 8-bit images only (convert with an "
                    "explicit radiometric stretch first)",
                    name, raw.elemSize1() * 8, raw.depth() >= CV_32F ? " floating-point" : ""));
  RgbImage img;
  img.height = raw.rows;
  img.width = raw.cols;
  img.pixels.resize(static_cast<size_t>(raw.rows) * raw.cols * 3);
  cv::Mat rgb(raw.rows, raw.cols, CV_8UC3, img.pixels.data());
  switch (raw.channels()) {
    case 1:
      cv::cvtColor(raw, rgb, cv::COLOR_GRAY2RGB);
      break;
    case 3:
      cv::cvtColor(raw, rgb, cv::COLOR_BGR2RGB);
      break;
    case 4:
      cv::cvtColor(raw, rgb, cv::COLOR_BGRA2RGB);
      break;
    default:
      throw DataError(
          fmt::format("{}: {} channels; expected 1 (grey), 3 (RGB) or 4 (RGBA)", name, raw.channels()));
  }
  ABLATE_CHECK(rgb.data == img.pixels.data(), "cvtColor reallocated");
  return img;
}

void resize_square(const RgbImage& img, int side, uint8_t* dst) {
  ABLATE_CHECK(side > 0 && img.height > 0 && img.width > 0);
  const cv::Mat src(img.height, img.width, CV_8UC3, const_cast<uint8_t*>(img.pixels.data()));
  cv::Mat out(side, side, CV_8UC3, dst);
  if (img.height == side && img.width == side) {
    src.copyTo(out);
  } else {
    const bool shrink = side <= img.height && side <= img.width;
    cv::resize(src, out, cv::Size(side, side), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  ABLATE_CHECK(out.data == dst, "resize reallocated");
}

void write_image(const std::filesystem::path& path, const RgbImage& img, int jpeg_quality) {
  const cv::Mat rgb(img.height, img.width, CV_8UC3, const_cast<uint8_t*>(img.pixels.data()));
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  bool ok = false;
  try {
    ok = cv::imwrite(path.string(), bgr, {cv::IMWRITE_JPEG_QUALITY, jpeg_quality});
  } catch (const cv::Exception& e) {
    throw DataError(fmt::format("{}: cannot write image: {}", path.string(), e.what()));
  }
  if (!ok)
    throw DataError(
        fmt::format("{}: cannot write image (unknown extension or unwritable folder)", path.string()));
}

#else

namespace {

[[noreturn]] void no_opencv(const std::string& what) {
  throw DataError(
      fmt::format("{}: this ablate build has no OpenCV, so it cannot decode or encode "
                  "images; pack the data into shards on a machine with OpenCV",
                  what));
}

}  // namespace

bool image_decoding_available() { return false; }
RgbImage decode_image(std::span<const uint8_t>, const std::string& name) { no_opencv(name); }
void resize_square(const RgbImage&, int, uint8_t*) { no_opencv("resize"); }
void write_image(const std::filesystem::path& path, const RgbImage&, int) { no_opencv(path.string()); }

#endif

RgbImage read_image(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  in.seekg(0, std::ios::end);
  std::vector<uint8_t> bytes(static_cast<size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw DataError(fmt::format("{}: read error", path.string()));
  return decode_image(bytes, path.string());
}

}  // namespace ablate
