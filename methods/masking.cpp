// Fixed-count masking (see masking.h).
#include "methods/masking.h"


#include "harness/check.h"
#include "pch/torch_pch.h"

namespace ablate {

MaskSplit split_from_shuffle(const torch::Tensor& ids_shuffle, int64_t n_keep) {
  const int64_t L = ids_shuffle.size(1);
  ABLATE_CHECK(n_keep >= 1 && n_keep < L, "keep {} of {} patches", n_keep, L);
  MaskSplit s;
  s.ids_keep = ids_shuffle.slice(1, 0, n_keep);
  s.ids_masked = ids_shuffle.slice(1, n_keep);
  // Inverse permutation by scatter (exact, no sort): restore[b, shuffle[b, i]] = i.
  auto positions = torch::arange(L, ids_shuffle.options()).expand_as(ids_shuffle);
  s.ids_restore = torch::empty_like(ids_shuffle).scatter_(1, ids_shuffle, positions);
  return s;
}

MaskSplit split_from_keep(const torch::Tensor& ids_keep, int64_t patches) {
  const int64_t K = ids_keep.size(1);
  // Stable sort of the 0/1 keep mask puts the masked patches first, in increasing index order.
  auto kept = ids_to_mask(ids_keep, patches);
  auto order = std::get<1>(torch::sort(kept, /*stable=*/true, /*dim=*/1, /*descending=*/false));
  return split_from_shuffle(torch::cat({ids_keep, order.slice(1, 0, patches - K)}, 1), K);
}

MaskSplit masking_from_noise(const torch::Tensor& noise, double mask_ratio) {
  return split_from_shuffle(torch::argsort(noise, /*dim=*/1, /*descending=*/false),
                            visible_count(noise.size(1), mask_ratio));
}

MaskSplit random_masking(int64_t batch, int64_t patches, double mask_ratio, torch::Device device) {
  return masking_from_noise(torch::rand({batch, patches}, torch::TensorOptions().device(device)), mask_ratio);
}

torch::Tensor gather_tokens(const torch::Tensor& x, const torch::Tensor& ids) {
  return torch::gather(x, 1, ids.unsqueeze(-1).expand({-1, -1, x.size(2)}));
}

torch::Tensor ids_to_mask(const torch::Tensor& ids, int64_t patches) {
  auto mask = torch::zeros({ids.size(0), patches}, ids.options().dtype(torch::kFloat32));
  return mask.scatter_(1, ids, 1.0);
}

}  // namespace ablate
