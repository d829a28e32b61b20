// Seeded permutations and stratified splits (see split.h).
#include "datasets/split.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "harness/check.h"
#include "harness/hash.h"

namespace ablate {

uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  ABLATE_CHECK(n > 0);
  // Largest multiple of n that fits: draws at or above it would bias small values.
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x;
  do x = rng();
  while (x >= limit);
  return x % n;
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  seeded_shuffle(p, rng);
  return p;
}

uint64_t mix_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

Split make_split(const std::vector<std::string>& files, const std::vector<int32_t>& labels,
                 double train_ratio, uint64_t seed) {
  ABLATE_CHECK(files.size() == labels.size(), "{} files, {} labels", files.size(), labels.size());
  ABLATE_CHECK(train_ratio >= 0.0 && train_ratio <= 1.0, "ratio {}", train_ratio);
  std::map<int32_t, std::vector<int64_t>> by_class;
  for (size_t i = 0; i < files.size(); ++i) by_class[labels[i]].push_back(static_cast<int64_t>(i));
  Split s;
  s.train_ratio = train_ratio;
  s.seed = seed;
  std::mt19937_64 rng(seed);
  for (auto& [label, members] : by_class) {
    std::sort(members.begin(), members.end(), [&](int64_t a, int64_t b) { return files[a] < files[b]; });
    seeded_shuffle(members, rng);
    const auto n_train = static_cast<size_t>(std::llround(train_ratio * static_cast<double>(members.size())));
    s.train.insert(s.train.end(), members.begin(), members.begin() + n_train);
    s.val.insert(s.val.end(), members.begin() + n_train, members.end());
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.val.begin(), s.val.end());
  Sha256 h;
  for (auto [tag, part] : {std::pair{"train\n", &s.train}, std::pair{"val\n", &s.val}}) {
    h.update(tag);
    std::vector<std::string> paths;
    for (int64_t i : *part) paths.push_back(files[i]);
    std::sort(paths.begin(), paths.end());
    for (auto& p : paths) {
      h.update(p);
      h.update("\n");
    }
  }
  s.hash = h.final_hex();
  return s;
}

}  // namespace ablate
