// The peak-memory model against hand-computed bytes on a micro config, against the peaks the
// Python reference measured on an H100 (the same architectures), and its uses: deriving the GPU
// count of resources.gpus: 0, and run ids that do not move when the new resource field is default.
#include "harness/memory_estimate.h"

#include <cmath>

#include "harness/bench_preset.h"
#include "harness/check.h"
#include "harness/config_io.h"
#include "tests/support/catch.h"
#include "tests/support/errors.h"

using namespace ablate;

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

RunConfig bench_config(MethodKind method, const std::string& model, int batch) {
  return bench_preset(method, model, 224, batch);
}

double rel_err(double a, double b) { return std::fabs(a - b) / b; }

}  // namespace

TEST_CASE("memory estimate: micro MAE config by hand", "[memory_estimate]") {
  // vit_micro: D = 64, 2 layers, 2 heads, MLP 256. 16 px / patch 8 -> L = 4, mask 0.75 -> 1
  // visible + cls = 2 encoder tokens. MAE decoder: 1 block of d = 32 (2 heads) over L + 1 = 5 tokens.
  RunConfig c;
  c.model.size = "vit_micro";
  c.model.img_size = 16;
  c.model.patch_size = 8;
  c.model.dec_depth = 1;
  c.model.dec_dim = 32;
  c.model.dec_heads = 2;
  c.train.batch = 4;
  // Encoder block, bytes per token: 2 LN inputs 2*4*64 = 512, bf16 LN1 out + qkv + attention out
  // + LN2 out = 2*(64+192+64+64) = 768, fc1 + GELU outputs 2*2*256 = 1024, logsumexp 4*2 = 8.
  const double enc_block = 512 + 768 + 1024 + 8;  // 2312
  // Same for the decoder block at width 32, MLP 128: 256 + 384 + 512 + 8 = 1160.
  const double dec_block = 256 + 384 + 512 + 8;
  const double per_image = 2 * 3 * 16 * 16     // bf16 input pixels
                           + 2 * 2 * enc_block  // 2 layers x 2 tokens
                           + 4 * 64 * 2         // final LN input (fp32)
                           + 2 * 64 * 2         // decoder embedding input (bf16)
                           + 1 * 5 * dec_block  // 1 block x 5 tokens
                           + (4 + 2) * 32 * 5   // decoder final LN input and output
                           + 2 * 192 * 4        // prediction (bf16), 4 patches of 3*8*8 values
                           + 3 * 4 * 192 * 4;   // loss: fp32 prediction, target, difference
  const MemoryEstimate e = estimate_peak_memory(c, 1);
  CHECK(std::fabs(e.activations_gib * kGiB - 4 * per_image) < 1e-3);
  // Parameters: encoder 2*64*... from model_sizes, 18 bytes each under bf16 autocast.
  CHECK(e.state_gib > 0);
  RunConfig fp32 = c;
  fp32.train.precision = Precision::fp32;
  CHECK(estimate_peak_memory(fp32, 1).state_gib == Approx(e.state_gib * 16.0 / 18.0));
  CHECK(estimate_peak_memory(fp32, 1).activations_gib > e.activations_gib);
}

TEST_CASE("memory estimate: within 15% of the Python reference's measured H100 peaks", "[memory_estimate]") {
  // max_memory_allocated of ../shared/bench/mae_reference.py (timm blocks, bf16 autocast, SDPA,
  // fused AdamW) on an NVIDIA H100 80GB, 2026-11-23 (results/bench/bench_2026-11-23_h100.md).
  CHECK(rel_err(estimate_peak_memory(bench_config(MethodKind::mae, "vit_b", 256), 1).total_gib(), 13.9) < 0.15);
  CHECK(rel_err(estimate_peak_memory(bench_config(MethodKind::selectivemae, "vit_b", 256), 1).total_gib(), 7.5) < 0.15);
  CHECK(rel_err(estimate_peak_memory(bench_config(MethodKind::mae, "vit_l", 128), 1).total_gib(), 13.9) < 0.15);
  CHECK(rel_err(estimate_peak_memory(bench_config(MethodKind::selectivemae, "vit_l", 128), 1).total_gib(), 9.6) < 0.15);
}

TEST_CASE("memory estimate: ranks split activations, not state; two views double them", "[memory_estimate]") {
  const RunConfig c = bench_config(MethodKind::mae, "vit_l", 256);
  const MemoryEstimate one = estimate_peak_memory(c, 1), two = estimate_peak_memory(c, 2);
  CHECK(two.state_gib == one.state_gib);
  CHECK(two.activations_gib == Approx(one.activations_gib / 2));
  RunConfig cs = bench_config(MethodKind::mae, "vit_b", 64), single = cs;
  cs.method.name = MethodKind::crossscale;
  single.method.name = MethodKind::crossscale;
  single.method.multiscale = false;
  CHECK(estimate_peak_memory(cs, 1).activations_gib == Approx(2 * estimate_peak_memory(single, 1).activations_gib));
  CHECK(estimate_peak_memory(cs, 1).state_gib > estimate_peak_memory(bench_config(MethodKind::mae, "vit_b", 64), 1).state_gib);
}

TEST_CASE("derive_gpu_count: the fewest power-of-two ranks that fit", "[memory_estimate]") {
  RunConfig b = bench_config(MethodKind::mae, "vit_b", 256);
  CHECK(derive_gpu_count(b) == 1);  // ~14 GiB on a 79 GiB GPU
  RunConfig big = bench_config(MethodKind::mae, "vit_2b4", 1024);
  const int k = derive_gpu_count(big);
  CHECK(k > 1);
  CHECK(fits_gpu(estimate_peak_memory(big, k).total_gib(), big.resources.gpu_mem_gb));
  CHECK_FALSE(fits_gpu(estimate_peak_memory(big, k / 2).total_gib(), big.resources.gpu_mem_gb));
  // 2.4B parameters need ~40 GiB of state alone: no split fits a 24 GiB GPU.
  big.resources.gpu_mem_gb = 24;
  const ConfigError e = error_of([&] { derive_gpu_count(big); });
  CHECK(e.key == "resources.gpus");
  CHECK(e.problem.find("24 GiB") != std::string::npos);
}

TEST_CASE("config hash: resources.gpu_mem_gb at its default leaves run ids as recorded", "[memory_estimate]") {
  // The id of the default config since run ids leave the eval section out (schema version 2; it
  // was 13325534f1b8 before, see results/README.md); gpu_mem_gb at its default is not in it.
  CHECK(config_hash(RunConfig{}) == "5bb9926d7869");
  RunConfig c;
  c.resources.gpu_mem_gb = 40;
  CHECK(config_hash(c) != "5bb9926d7869");
}
