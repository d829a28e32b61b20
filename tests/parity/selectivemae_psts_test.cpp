// Parity with SelectiveMAE's progressive semantic token selection (golden case selectivemae_psts:
// TokenSelect_smooth.update_current_stage and token_expansion of Fengxiang23/SelectiveMAE 02a47c3)
// for method.psts_mix: split, at two mask ratios (85%: 3 seeds + 2 x 2 picks of 49 tokens; 75%:
// 6 + 2 x 3). Tolerances: selections are index lists and compared exactly (the closest pair of
// similarities the order depends on is 6.5e-5 apart, far above float32 reordering); the stage
// weights to 1e-9 (double arithmetic of our progress fractions vs the public c / 20).
#include "methods/psts.h"

#include <string>
#include <vector>

#include "methods/masking.h"
#include "pch/torch_pch.h"
#include "tests/support/catch.h"
#include "tests/support/golden.h"

using namespace ablate;

namespace {

const std::vector<PstsStage> kOrder{PstsStage::near, PstsStage::far, PstsStage::random};
const std::vector<double> kBounds{0.35, 0.375, 0.725, 0.75};  // the public 280/300/580/600 of 800
constexpr int64_t kEpochs = 800;

// The step's weights at the start of `epoch`, as the trainer hands them over (float32 on the device).
torch::Tensor weights_at(int64_t epoch) {
  const PstsWeights w = psts_stage_weights(double(epoch) / double(kEpochs), kOrder, kBounds);
  return torch::tensor({w[0], w[1], w[2]}, torch::kFloat32);
}

// The public schedule row (stage, change_epoch_first, change_epoch_second) as stage weights.
PstsWeights official_weights(int64_t stage, int64_t c1, int64_t c2) {
  switch (stage) {
    case 1: return {1.0, 0.0, 0.0};
    case 2: return {1.0 - double(c1) / 20.0, double(c1) / 20.0, 0.0};
    case 3: return {0.0, 1.0, 0.0};
    case 4: return {0.0, 1.0 - double(c2) / 20.0, double(c2) / 20.0};
    default: return {0.0, 0.0, 1.0};
  }
}

// The public counts of one round of m picks, (near, far, random): its int((1 - c/20) * m) for the
// earlier stage of a blend, in double as its Python computes it (exact = false), or in exact
// integer arithmetic floor((20 - c) * m / 20) (exact = true). The two differ where the double
// product lands just below an integer (c = 16 with m a multiple of 5, c = 18 with m a multiple of
// 10); psts_split_counts gives the exact count there (documented in methods/psts.h).
std::vector<int64_t> official_counts(int64_t stage, int64_t c1, int64_t c2, int64_t m, bool exact) {
  auto first = [&](int64_t c) {
    return exact ? (20 - c) * m / 20 : static_cast<int64_t>((1.0 - double(c) / 20.0) * double(m));
  };
  switch (stage) {
    case 1: return {m, 0, 0};
    case 2: return {first(c1), m - first(c1), 0};
    case 3: return {0, m, 0};
    case 4: return {0, first(c2), m - first(c2)};
    default: return {0, 0, m};
  }
}

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

}  // namespace

TEST_CASE("selectivemae_psts: the 800-epoch stage schedule and each round's counts", "[parity][psts]") {
  const auto g = test::golden_tensors("selectivemae_psts", "psts.safetensors").tensors;
  int64_t rounding_cases = 0;
  for (const char* cfg : {"mr085", "mr075"}) {
    const auto schedule = g.at(std::string(cfg) + ".schedule");  // (800, 4): epoch, stage, c1, c2
    REQUIRE(schedule.size(0) == kEpochs);
    for (int64_t e = 0; e < kEpochs; ++e) {
      const auto row = as_vector(schedule[e]);
      REQUIRE(row[0] == e);
      INFO(cfg << " epoch " << e << " stage " << row[1] << " c1 " << row[2] << " c2 " << row[3]);
      const PstsWeights ours = psts_stage_weights(double(e) / double(kEpochs), kOrder, kBounds);
      const PstsWeights theirs = official_weights(row[1], row[2], row[3]);
      for (size_t k = 0; k < 3; ++k) CHECK(ours[k] == Approx(theirs[k]).margin(1e-9));
      // Counts for every round size up to 32 picks (the golden rounds are 2 and 3): the public
      // code's, except where its double rounding drops one below the exact count.
      for (int64_t m = 1; m <= 32; ++m) {
        INFO("m " << m);
        const auto theirs_double = official_counts(row[1], row[2], row[3], m, false);
        const auto theirs_exact = official_counts(row[1], row[2], row[3], m, true);
        if (theirs_double != theirs_exact) {
          ++rounding_cases;
          CHECK(((row[1] == 2 || row[1] == 4) && (row[2] == 16 || row[2] == 18 || row[3] == 16 || row[3] == 18)));
        }
        CHECK(as_vector(psts_split_counts(weights_at(e), kOrder, m)) == theirs_exact);
        if (m <= 4) CHECK(theirs_double == theirs_exact);  // the golden round sizes are unaffected
      }
    }
  }
  CHECK(rounding_cases == 2 * 2 * (6 + 3));  // 2 configs x stages 2 and 4 x (c 16: 6 m, c 18: 3 m)
}

TEST_CASE("selectivemae_psts: near, mixed, far, far+random and random expansions equal token_expansion",
          "[parity][psts]") {
  const auto g = test::golden_tensors("selectivemae_psts", "psts.safetensors").tensors;
  const torch::Tensor x = g.at("x");  // (2, 49, 32) token features
  const int64_t L = x.size(1);
  struct Case {
    const char* name;
    int64_t n_keep;
  };
  for (const Case& cfg : {Case{"mr085", 7}, Case{"mr075", 12}}) {
    const std::string p = cfg.name;
    const torch::Tensor seed = g.at(p + ".seed_set");  // (2, S)
    CHECK(torch::equal(split_from_keep(seed, L).ids_masked, g.at(p + ".ids_unselected_initial")));
    for (int64_t epoch : {0, 290, 400, 590, 700}) {
      const std::string e = fmt::format("{}.e{:03d}.", p, epoch);
      INFO(e);
      const torch::Tensor weights = weights_at(epoch);
      // The golden run's torch.randperm draws, injected as keys: the j-th entry of a draw over
      // the list after the n_far far picks gets key j.
      const int64_t n_fill = cfg.n_keep - seed.size(1);
      const PstsRandomKeys keys = [&](int64_t round, int64_t n) {
        auto k = torch::full({1, n}, std::numeric_limits<float>::infinity());
        const std::string name = e + "randperm" + std::to_string(round + 1);
        if (!g.count(name)) return k;  // no random picks this round
        const int64_t m = round == 0 ? n_fill / 2 : n_fill - n_fill / 2;
        const int64_t n_far = psts_split_counts(weights, kOrder, m)[kPstsFar].item<int64_t>();
        const torch::Tensor perm = g.at(name);  // (n - n_far)
        REQUIRE(perm.size(0) == n - n_far);
        k[0].index_put_({perm + n_far}, torch::arange(perm.size(0), torch::kFloat32));
        return k;
      };
      const PstsSelection s = psts_fill_split(x, seed, cfg.n_keep, weights, kOrder, 2, keys);
      CHECK(as_vector(s.selected) == as_vector(g.at(e + "select_index")));
      CHECK(as_vector(s.unselected) == as_vector(g.at(e + "unselect_index")));
      CHECK(torch::equal(gather_tokens(x, s.selected), g.at(e + "select_token")));
    }
  }
}
