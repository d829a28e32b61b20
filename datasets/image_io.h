// Image decoding for ablate: any JPEG, PNG or TIFF file becomes 8-bit RGB, or a DataError that
// names the file.
//
// Policies, explicit so every run sees the same pixels:
//  * grayscale is replicated to RGB; RGBA / grey+alpha drop the alpha channel (not composited);
//  * 16-bit and floating-point images are rejected: remote-sensing products store 10-14 significant
//    bits in 16-bit containers with sensor-specific ranges, so any fixed rescale to 8 bits would be
//    a silent radiometric choice. Convert them with an explicit stretch first;
//  * truncated files are errors: OpenCV's JPEG decoder fills a truncated image with grey and only
//    prints a warning, so JPEG marker structure is walked up to the EOI marker before decoding
//    (and PNGs must end with an IEND chunk);
//  * resizing to a square side uses cv::INTER_AREA when shrinking (no aliasing) and
//    cv::INTER_LINEAR when enlarging; aspect ratio is not kept (the benchmarks are square, or
//    within a few pixels of it).
// Without OpenCV (the GPU build) every function here throws DataError saying so.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace ablate {

// 8-bit RGB, row-major HWC.
struct RgbImage {
  int height = 0, width = 0;
  std::vector<uint8_t> pixels;  // (height, width, 3)
};

// Whether this build can decode images (OpenCV present).
bool image_decoding_available();

// Decodes `bytes` (an encoded JPEG/PNG/TIFF); `name` is used in error messages.
RgbImage decode_image(std::span<const uint8_t> bytes, const std::string& name);
// Reads and decodes a file; DataError naming it when unreadable, corrupt, truncated or unsupported.
RgbImage read_image(const std::filesystem::path& path);
// `img` resized to side x side into dst (side, side, 3) HWC (a plain copy when already that size).
void resize_square(const RgbImage& img, int side, uint8_t* dst);
// Encodes `img` as PNG or JPEG by the extension of `path` and writes it.
void write_image(const std::filesystem::path& path, const RgbImage& img, int jpeg_quality = 95);

// Whether a JPEG's marker structure runs from SOI to an EOI marker within `bytes`. Exposed for tests.
bool jpeg_complete(std::span<const uint8_t> bytes);

}  // namespace ablate
