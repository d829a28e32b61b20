// Stratified, seeded train/val splits and the seeded permutations behind them.
//
// Per class, the file paths are sorted, shuffled with a Fisher-Yates pass driven by std::mt19937_64
// (whose output sequence the C++ standard fixes, unlike std::shuffle and the distributions), and
// the first round(ratio * n) go to train. The same (files, seed, ratio) therefore give the same split
// on every platform, and split_hash (SHA-256 of the sorted train and val path lists) lets each run
// record exactly which images it trained and evaluated on.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace ablate {

// Uniform integer in [0, n) from `rng`, by rejection (no modulo bias, platform independent).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);
// Fisher-Yates shuffle of `v` in place using uniform_below.
template <class T>
void seeded_shuffle(std::vector<T>& v, std::mt19937_64& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(rng, i)]);
}
// A permutation of 0..n-1 determined by `seed`.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);
// Distinct, well-mixed seeds per (seed, stream), e.g. one per epoch: splitmix64 finaliser.
uint64_t mix_seed(uint64_t seed, uint64_t stream);

struct Split {
  std::vector<int64_t> train, val;  // indices into the file list, ascending
  double train_ratio = 0.0;
  uint64_t seed = 0;
  std::string hash;  // sha256 of "train\n" + sorted train paths + "val\n" + ...
};

// Stratified split of `files` (labels[i] in [0, num_classes); -1 = unlabelled, treated as one
// group). Each class sends round(train_ratio * n_c) images to train, the rest to val.
Split make_split(const std::vector<std::string>& files, const std::vector<int32_t>& labels,
                 double train_ratio, uint64_t seed);

}  // namespace ablate
