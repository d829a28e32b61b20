// SHA-256 (FIPS 180-4), implemented here so run ids, artifact digests and shard checksums do not
// depend on a crypto library. Not constant-time: it hashes public data (configs, files), not secrets.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ablate {

// Incremental SHA-256: update() any number of times, then final() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // The 32-byte digest. The object must not be updated or finalised again afterwards.
  std::array<uint8_t, 32> final();
  // final() as 64 lowercase hex characters.
  std::string final_hex();

 private:
  void compress(const uint8_t* block);  // one 64-byte block into state_

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;     // bytes waiting in buffer_
  uint64_t total_bytes_ = 0;
  bool finalised_ = false;
};

// SHA-256 of `bytes` as 64 lowercase hex characters.
std::string sha256_hex(std::string_view bytes);

}  // namespace ablate
