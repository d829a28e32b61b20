// The index bookkeeping of a masking split (its counts are harness/model_sizes.h's, tested there).
#include "methods/masking.h"

#include "pch/torch_pch.h"

#include "harness/check.h"
#include "tests/support/catch.h"

using namespace ablate;

TEST_CASE("random masking is a per-sample permutation with its inverse", "[masking]") {
  torch::manual_seed(1);
  for (double m : {0.5, 0.75, 0.85}) {
    auto s = random_masking(4, 49, m, torch::kCPU);
    const int64_t keep = visible_count(49, m);
    REQUIRE(s.ids_keep.sizes() == torch::IntArrayRef({4, keep}));
    REQUIRE(s.ids_masked.sizes() == torch::IntArrayRef({4, 49 - keep}));
    auto shuffle = torch::cat({s.ids_keep, s.ids_masked}, 1);
    CHECK(torch::equal(std::get<0>(shuffle.sort(1)), torch::arange(49).expand({4, 49})));
    CHECK(torch::equal(torch::gather(shuffle, 1, s.ids_restore), torch::arange(49).expand({4, 49})));
  }
  auto s = random_masking(2, 100, 0.75, torch::kCPU);
  CHECK_FALSE(torch::equal(s.ids_keep[0], s.ids_keep[1]));
}

TEST_CASE("split from chosen visible ids", "[masking]") {
  auto keep = torch::tensor({{5, 0, 2}, {1, 3, 4}}, torch::kInt64);
  auto s = split_from_keep(keep, 6);
  CHECK(torch::equal(s.ids_keep, keep));
  CHECK(torch::equal(s.ids_masked, torch::tensor({{1, 3, 4}, {0, 2, 5}}, torch::kInt64)));
  CHECK(torch::equal(ids_to_mask(keep, 6), torch::tensor({{1.f, 0.f, 1.f, 0.f, 0.f, 1.f}, {0.f, 1.f, 0.f, 1.f, 1.f, 0.f}})));
  auto x = torch::arange(12, torch::kFloat32).view({2, 6, 1});
  CHECK(torch::equal(gather_tokens(x, keep).squeeze(-1), torch::tensor({{5.f, 0.f, 2.f}, {7.f, 9.f, 10.f}})));
}
