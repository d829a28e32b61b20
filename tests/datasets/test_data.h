// Shared helpers of the datasets tests: where the real data lives, scratch folders, and small
// synthetic image sets for tests that must run without the shared data.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>

#include "datasets/image_io.h"

namespace ablate::test {
namespace fs = std::filesystem;

inline fs::path data_root() { return ABLATE_TEST_DATA_ROOT; }
inline bool have_data(const std::string& folder) { return fs::is_directory(data_root() / folder); }

// A fresh folder under the system temp dir, removed with its contents on destruction.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("ablate-datasets-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The message of the exception f throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Writes `per_class` random side x side PNGs into dir/<class k>/ for `classes` classes.
inline void write_synthetic_classes(const fs::path& dir, int classes, int per_class, int side,
                                    uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int c = 0; c < classes; ++c) {
    fs::create_directories(dir / ("class" + std::to_string(c)));
    for (int i = 0; i < per_class; ++i) {
      RgbImage img;
      img.height = img.width = side;
      img.pixels.resize(static_cast<size_t>(side) * side * 3);
      for (auto& p : img.pixels) p = static_cast<uint8_t>(rng());
      write_image(dir / ("class" + std::to_string(c)) / ("img" + std::to_string(i) + ".png"), img);
    }
  }
}

}  // namespace ablate::test
