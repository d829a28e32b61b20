// SHA-256 against the FIPS 180-2 / NIST CSRC example vectors, and streaming == one-shot for every
// split of a message across block boundaries.
#include "harness/hash.h"

#include <string>

#include "tests/support/catch.h"

using namespace ablate;

TEST_CASE("sha256 matches the NIST example vectors", "[hash]") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // 448 bits: padding no longer fits the first block.
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu") ==
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  CHECK(sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("streaming updates equal one-shot hashing for every chunk size", "[hash]") {
  std::string message;
  for (int i = 0; i < 300; ++i) message += char('a' + (i * 7) % 26);
  const std::string expected = sha256_hex(message);
  for (size_t chunk = 1; chunk <= 130; ++chunk) {
    Sha256 h;
    for (size_t at = 0; at < message.size(); at += chunk) h.update(std::string_view(message).substr(at, chunk));
    INFO("chunk " << chunk);
    CHECK(h.final_hex() == expected);
  }
  // One million 'a' fed in 997-byte pieces (not a divisor of 64).
  Sha256 h;
  std::string piece(997, 'a');
  size_t left = 1000000;
  for (; left >= piece.size(); left -= piece.size()) h.update(piece);
  h.update(std::string(left, 'a'));
  CHECK(h.final_hex() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 digest bytes agree with the hex form", "[hash]") {
  Sha256 h;
  h.update("abc");
  auto digest = h.final();
  CHECK(digest[0] == 0xba);
  CHECK(digest[31] == 0xad);
}
