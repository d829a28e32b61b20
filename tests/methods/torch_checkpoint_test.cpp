// The torch.save reader and writer: the official MAE checkpoint (golden mae_tiny/checkpoint.pth,
// written by MAE's save_model with optimizer, scaler, epoch and an argparse.Namespace) reads with the
// key set and shapes its meta.json records and the values MAE computed from them; a written file
// reads back bit for bit; broken files are DataErrors naming the file.
#include "methods/torch_checkpoint.h"

#include "methods/pch/torch_pch.h"

#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "methods/safetensors.h"
#include "methods/vit.h"
#include "tests/support/catch.h"
#include "tests/support/golden.h"
#include "tests/support/temp_dir.h"

using namespace ablate;

namespace {

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class F>
std::string data_error_of(F&& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

nlohmann::json mae_tiny_meta() {
  std::ifstream in(test::golden_dir() / "mae_tiny" / "meta.json");
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("torch checkpoint: MAE's save_model file gives its state dict, other entries skipped",
          "[torch_checkpoint]") {
  const auto meta = mae_tiny_meta()["checkpoint"];
  const TorchCheckpoint ck = read_torch_checkpoint(test::golden_dir() / "mae_tiny" / "checkpoint.pth");
  CHECK(ck.state_dict_key == "model");
  std::vector<std::string> others;
  for (const auto& k : meta["top_level_keys"]) {
    if (k != "model") others.push_back(k);
  }
  std::sort(others.begin(), others.end());
  auto got = ck.other_entries;
  std::sort(got.begin(), got.end());
  CHECK(got == others);  // optimizer, epoch, scaler, args (an argparse.Namespace) did not stop the read
  CHECK(ck.skipped.empty());
  REQUIRE(ck.state_dict.size() == meta["model_keys"].size());
  for (const auto& [name, shape] : meta["model_keys"].items()) {
    INFO(name);
    REQUIRE(ck.state_dict.count(name));
    CHECK(ck.state_dict.at(name).sizes().vec() == shape.get<std::vector<int64_t>>());
    CHECK(ck.state_dict.at(name).scalar_type() == torch::kFloat32);
  }
}

TEST_CASE("torch checkpoint: the values are MAE's (fixed sin-cos table, patch embedding output)",
          "[torch_checkpoint]") {
  const auto sd = read_torch_state_dict(test::golden_dir() / "mae_tiny" / "checkpoint.pth");
  // MAE's pos_embed: a zero CLS row, then get_2d_sincos_pos_embed(64, 4) (float64 -> float32).
  const auto pos = sd.at("pos_embed");  // (1, 17, 64)
  CHECK(torch::equal(pos[0][0], torch::zeros({64})));
  CHECK(torch::allclose(pos[0].slice(0, 1), sincos_pos_embed_2d(64, 4), 0.0, 1e-7));
  // The conv the official patch_embed applied to the golden images, with the weights read here.
  const auto imgs = test::golden_tensors("mae_tiny", "inputs.safetensors").tensors.at("imgs");
  const auto expected = test::golden_tensors("mae_tiny", "intermediates.safetensors").tensors.at("patch_embed_out");
  const auto out = torch::conv2d(imgs, sd.at("patch_embed.proj.weight"), sd.at("patch_embed.proj.bias"), {8, 8})
                       .flatten(2).transpose(1, 2);  // (4, 16, 64)
  CHECK((out - expected).abs().max().item<double>() < 1e-5);
}

TEST_CASE("torch checkpoint: a written state dict reads back bit for bit", "[torch_checkpoint]") {
  test::TempDir dir("torch_checkpoint");
  torch::manual_seed(3);
  const auto base = torch::randn({6, 5});
  std::map<std::string, torch::Tensor> t{
      {"blocks.0.attn.qkv.weight", torch::randn({12, 4})},
      {"transposed", base.t()},                  // non-contiguous: written as a contiguous copy
      {"slice", base.slice(0, 2, 4)},            // a view with a storage offset
      {"scalar", torch::tensor(2.5)},            // 0-d
      {"empty", torch::empty({0, 3})},
      {"double", torch::randn({3}, torch::kFloat64)},
      {"half", torch::randn({3}).to(torch::kBFloat16)},
      {"index", torch::arange(-3, 4, torch::kInt64)},
      {"big_index", torch::tensor({int64_t(1) << 40})},
      {"flag", torch::tensor({true, false})},
  };
  write_torch_state_dict(dir / "weights.pth", t);
  const TorchCheckpoint back = read_torch_checkpoint(dir / "weights.pth");
  CHECK(back.state_dict_key == "model");
  CHECK(back.other_entries.empty());
  REQUIRE(back.state_dict.size() == t.size());
  for (const auto& [name, x] : t) {
    INFO(name);
    const auto& y = back.state_dict.at(name);
    CHECK(y.scalar_type() == x.scalar_type());
    CHECK(y.sizes() == x.sizes());
    CHECK(torch::equal(y, x));
  }
  // Layout torch.load relies on: stored entries under <stem>/, version record, 64-byte aligned data.
  const std::string bytes = file_bytes(dir / "weights.pth");
  CHECK(bytes.find("weights/data.pkl") != std::string::npos);
  CHECK(bytes.find("weights/version") != std::string::npos);
  CHECK(bytes.find("weights/data/9") != std::string::npos);
}

TEST_CASE("torch checkpoint: a state dict under 'state_dict' or at the top level is found",
          "[torch_checkpoint]") {
  test::TempDir dir("torch_checkpoint");
  const std::map<std::string, torch::Tensor> t{{"w", torch::ones({2})}};
  write_torch_state_dict(dir / "a.pth", t, "state_dict");
  CHECK(read_torch_checkpoint(dir / "a.pth").state_dict_key == "state_dict");
  CHECK(torch::equal(read_torch_state_dict(dir / "a.pth").at("w"), t.at("w")));
}

TEST_CASE("torch checkpoint: broken files are DataErrors naming the file", "[torch_checkpoint]") {
  test::TempDir dir("torch_checkpoint");
  CHECK(data_error_of([&] { read_torch_checkpoint(dir / "missing.pth"); }).find("missing.pth") != std::string::npos);

  const std::string good = file_bytes(test::golden_dir() / "mae_tiny" / "checkpoint.pth");
  std::ofstream(dir / "truncated.pth", std::ios::binary) << good.substr(0, good.size() / 2);
  CHECK(data_error_of([&] { read_torch_checkpoint(dir / "truncated.pth"); }).find("truncated.pth") != std::string::npos);

  // A flipped byte inside pos_embed's storage (key "1"; data 64-byte aligned after its local
  // header's name and padding field): the CRC catches it.
  std::string corrupt = good;
  const std::string name = "checkpoint-0/data/1";
  const auto at = corrupt.find(name);
  REQUIRE(at != std::string::npos);
  corrupt[(at + name.size() + 4 + 63) / 64 * 64 + 10] ^= 0x55;
  std::ofstream(dir / "corrupt.pth", std::ios::binary) << corrupt;
  CHECK_THROWS_AS(read_torch_checkpoint(dir / "corrupt.pth"), DataError);

  // torch.save before 1.6: a bare pickle stream, no zip.
  std::ofstream(dir / "legacy.pth", std::ios::binary) << std::string("\x80\x02\x8a\x0a", 4) << std::string(64, 'x');
  CHECK(data_error_of([&] { read_torch_checkpoint(dir / "legacy.pth"); }).find("legacy") != std::string::npos);
}

TEST_CASE("torch checkpoint: views into shared storages, parameters and protocol 4 read as torch wrote them",
          "[torch_checkpoint]") {
  // Fixtures written by Python torch (tests/data/torch_save/make.py): offsets, strides, an
  // nn.Parameter, bf16 / int64 / bool / 0-d tensors, a nested dict beside the state dict.
  const std::filesystem::path dir = std::filesystem::path(ABLATE_TEST_SOURCE_DIR) / "tests" / "data" / "torch_save";
  const auto want = read_safetensors(dir / "views.safetensors").tensors;
  for (const char* file : {"views_p2.pth", "views_p4.pth"}) {
    INFO(file);
    const TorchCheckpoint ck = read_torch_checkpoint(dir / file);
    CHECK(ck.state_dict_key == "state_dict");
    CHECK(ck.other_entries == std::vector<std::string>{"meta"});
    REQUIRE(ck.state_dict.size() == want.size());
    for (const auto& [name, t] : want) {
      INFO(name);
      REQUIRE(ck.state_dict.count(name));
      CHECK(ck.state_dict.at(name).scalar_type() == t.scalar_type());
      CHECK(torch::equal(ck.state_dict.at(name), t));
    }
  }
}
