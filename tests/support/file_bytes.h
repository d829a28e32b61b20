// Test helper: a whole file as bytes ("" when it cannot be read), for byte-for-byte comparisons
// of written files (safetensors, torch checkpoints, exports) against references.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace ablate::test {

inline std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace ablate::test
