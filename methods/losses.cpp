// Pre-training losses (see losses.h), computed in float32.
#include "methods/losses.h"

#include <cmath>
#include <limits>

#include "harness/check.h"
#include "methods/masking.h"
#include "methods/pch/torch_pch.h"
#include "methods/vit.h"

namespace ablate {
namespace {

namespace F = torch::nn::functional;

torch::Tensor unit(const torch::Tensor& x) {
  return F::normalize(x.to(torch::kFloat32), F::NormalizeFuncOptions().dim(-1));
}

}  // namespace

torch::Tensor patch_targets(const torch::Tensor& images, int64_t patch, const torch::Tensor& ids,
                            bool norm_pix) {
  auto target = gather_tokens(patchify(images.to(torch::kFloat32), patch), ids);  // (B, N, P)
  if (!norm_pix) return target;
  auto mean = target.mean(-1, true);
  auto var = target.var(-1, /*unbiased=*/true, /*keepdim=*/true);
  return (target - mean) / torch::sqrt(var + 1e-6);
}

torch::Tensor reconstruction_loss(const torch::Tensor& pred, const torch::Tensor& target) {
  return (pred.to(torch::kFloat32) - target.to(torch::kFloat32)).pow(2).mean({1, 2});
}

torch::Tensor nt_xent(const torch::Tensor& a, const torch::Tensor& b, double temperature,
                      NtXentDenominator denominator) {
  const int64_t N = a.size(0);
  auto z = unit(torch::cat({a, b}, 0));                    // (2N, D)
  auto logits = torch::mm(z, z.t()) / temperature;          // (2N, 2N)
  auto self = torch::eye(2 * N, torch::TensorOptions().dtype(torch::kBool).device(z.device()));
  logits = logits.masked_fill(self, -std::numeric_limits<float>::infinity());
  auto idx = torch::arange(2 * N, torch::TensorOptions().dtype(torch::kInt64).device(z.device()));
  auto partner = torch::remainder(idx + N, 2 * N);
  torch::Tensor per_view;  // (2N)
  if (denominator == NtXentDenominator::all) {
    per_view = F::cross_entropy(logits, partner, F::CrossEntropyFuncOptions().reduction(torch::kNone));
  } else {
    ABLATE_CHECK(N >= 2, "NT-Xent over negatives only needs at least 2 samples, got {}", N);
    auto pos = logits.gather(1, partner.unsqueeze(1)).squeeze(1);  // (2N)
    auto negatives = logits.scatter(1, partner.unsqueeze(1), -std::numeric_limits<float>::infinity());
    // log(sum_neg exp(s / tau) + 1e-8) without overflow at small tau: logaddexp with log(eps).
    per_view = torch::logaddexp(torch::logsumexp(negatives, 1), torch::full_like(pos, std::log(1e-8))) - pos;
  }
  return 0.5 * (per_view.slice(0, 0, N) + per_view.slice(0, N));
}

torch::Tensor cosine_loss(const torch::Tensor& a, const torch::Tensor& b) {
  return 2.0 - 2.0 * (unit(a) * unit(b)).sum(-1);
}

torch::Tensor token_mse(const torch::Tensor& pred, const torch::Tensor& target) {
  return reconstruction_loss(pred, target);
}

torch::Tensor token_infonce(const torch::Tensor& pred, const torch::Tensor& target, double temperature) {
  const int64_t B = pred.size(0), N = pred.size(1);
  auto p = unit(pred).transpose(0, 1);                              // (N, B, d)
  auto t = unit(target).transpose(0, 1);                            // (N, B, d)
  auto logits = torch::bmm(p, t.transpose(1, 2)) / temperature;     // (N, B, B)
  auto own = torch::arange(B, torch::TensorOptions().dtype(torch::kInt64).device(p.device()));
  auto ce = F::cross_entropy(logits.reshape({N * B, B}), own.repeat({N}),
                             F::CrossEntropyFuncOptions().reduction(torch::kNone));
  return ce.view({N, B}).mean(0);
}

}  // namespace ablate
