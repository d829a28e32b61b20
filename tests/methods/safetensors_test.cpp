// The safetensors reader/writer: a file written by the reference writer (timm's save_for_hf in the
// golden folder) is read and written back byte for byte; dtypes round-trip; broken files fail with
// the file named.
#include "methods/safetensors.h"

#include "pch/torch_pch.h"

#include <fstream>
#include <iterator>

#include "tests/support/catch.h"
#include "tests/support/file_bytes.h"
#include "tests/support/golden.h"
#include "tests/support/temp_dir.h"

using namespace ablate;

namespace {

using test::file_bytes;

// The message of the DataError `f` throws ("" when it throws none).
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("safetensors: the reference writer's file is reproduced byte for byte", "[safetensors]") {
  const auto src = test::golden_dir() / "timm_vit" / "model.safetensors";
  const SafetensorsFile f = read_safetensors(src);
  REQUIRE(f.tensors.size() > 10);
  REQUIRE(f.tensors.at("pos_embed").sizes() == torch::IntArrayRef({1, 17, 192}));
  test::TempDir dir("safetensors");
  write_safetensors(dir / "copy.safetensors", f.tensors, f.metadata);
  CHECK(file_bytes(dir / "copy.safetensors") == file_bytes(src));
}

TEST_CASE("safetensors: every dtype round-trips, larger elements first", "[safetensors]") {
  test::TempDir dir("safetensors");
  std::map<std::string, torch::Tensor> t{
      {"a.f32", torch::randn({3, 4})},
      {"b.i64", torch::arange(5, torch::kInt64)},
      {"c.bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"d.u8", torch::arange(7, torch::kUInt8)},
      {"e.bool", torch::tensor({true, false, true})},
      {"f.scalar", torch::ones({1})},
  };
  write_safetensors(dir / "t.safetensors", t, {{"format", "pt"}});
  const SafetensorsFile back = read_safetensors(dir / "t.safetensors");
  REQUIRE(back.tensors.size() == t.size());
  for (const auto& [name, x] : t) {
    INFO(name);
    CHECK(back.tensors.at(name).scalar_type() == x.scalar_type());
    CHECK(torch::equal(back.tensors.at(name), x));
  }
  CHECK(back.metadata.at("format") == "pt");
  const std::string bytes = file_bytes(dir / "t.safetensors");
  CHECK(bytes.find("\"b.i64\"") < bytes.find("\"a.f32\""));  // 8-byte dtype before 4-byte
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  CHECK(header_len % 8 == 0);  // padded with spaces, as the reference writer pads
}

TEST_CASE("safetensors: broken files are DataErrors naming the file", "[safetensors]") {
  test::TempDir dir("safetensors");
  const auto missing = dir / "missing.safetensors";
  CHECK(message_of([&] { read_safetensors(missing); }).find("missing.safetensors") != std::string::npos);

  const auto shortf = dir / "short.safetensors";
  std::ofstream(shortf, std::ios::binary) << "abc";
  CHECK_THROWS_AS(read_safetensors(shortf), DataError);

  // A valid file truncated in its data section: offsets no longer fit.
  write_safetensors(dir / "ok.safetensors", {{"x", torch::randn({16})}});
  std::string bytes = file_bytes(dir / "ok.safetensors");
  bytes.resize(bytes.size() - 4);
  std::ofstream(dir / "trunc.safetensors", std::ios::binary) << bytes;
  const std::string m = message_of([&] { read_safetensors(dir / "trunc.safetensors"); });
  CHECK(m.find("trunc.safetensors") != std::string::npos);
  CHECK(m.find("'x'") != std::string::npos);
}
