// Weighted KNN classification and top-k accuracy (see knn.h for the voting and tie rules).
#include "methods/knn.h"

#include "pch/torch_pch.h"

#include <algorithm>

#include "harness/check.h"

namespace ablate {

namespace F = torch::nn::functional;

TopkAccuracy topk_accuracy(const torch::Tensor& scores, const torch::Tensor& labels) {
  ABLATE_CHECK(scores.dim() == 2 && labels.dim() == 1 && scores.size(0) == labels.size(0),
               "scores {} labels {}", c10::str(scores.sizes()), c10::str(labels.sizes()));
  ABLATE_CHECK(scores.size(0) > 0, "no samples to score");
  const int64_t top = std::min<int64_t>(5, scores.size(1));
  // A stable descending sort keeps equal scores in class order: the lower class ranks first.
  const torch::Tensor order = std::get<1>(torch::sort(scores, /*stable=*/true, /*dim=*/1,
                                                      /*descending=*/true))
                                  .slice(1, 0, top);                            // (N, top)
  const torch::Tensor hits = order.eq(labels.to(order.device()).unsqueeze(1));  // (N, top)
  return TopkAccuracy{hits.select(1, 0).to(torch::kFloat64).mean().item<double>(),
                      hits.any(1).to(torch::kFloat64).mean().item<double>()};
}

torch::Tensor knn_class_scores(const torch::Tensor& train_feats, const torch::Tensor& train_labels,
                               const torch::Tensor& val_feats, int64_t num_classes, int64_t k,
                               double t, int64_t val_chunk) {
  ABLATE_CHECK(
      train_feats.dim() == 2 && val_feats.dim() == 2 && train_feats.size(1) == val_feats.size(1),
      "train {} val {}", c10::str(train_feats.sizes()), c10::str(val_feats.sizes()));
  ABLATE_CHECK(train_labels.dim() == 1 && train_labels.size(0) == train_feats.size(0),
               "labels {} for {} training features", c10::str(train_labels.sizes()),
               train_feats.size(0));
  ABLATE_CHECK(train_feats.size(0) > 0 && k > 0 && t > 0 && val_chunk > 0 && num_classes > 0,
               "n_train {} k {} t {} chunk {} classes {}", train_feats.size(0), k, t, val_chunk,
               num_classes);
  const torch::Device device = train_feats.device();
  const int64_t kk = std::min(k, train_feats.size(0));
  const auto unit = F::NormalizeFuncOptions().p(2).dim(1);
  const torch::Tensor train = F::normalize(train_feats.to(torch::kFloat32), unit);  // (N_t, D)
  const torch::Tensor labels = train_labels.to(device, torch::kInt64);              // (N_t)
  const torch::Tensor queries =
      F::normalize(val_feats.to(device, torch::kFloat32), unit);  // (N_v, D)

  std::vector<torch::Tensor> chunks;
  for (int64_t begin = 0; begin < queries.size(0); begin += val_chunk) {
    const torch::Tensor q = queries.slice(0, begin, begin + val_chunk);  // (c, D)
    const torch::Tensor sim = q.matmul(train.t());                       // (c, N_t)
    // Stable sort instead of topk: topk leaves the order of equal similarities unspecified.
    auto [sorted, index] = torch::sort(sim, /*stable=*/true, /*dim=*/1, /*descending=*/true);
    const torch::Tensor weight = sorted.slice(1, 0, kk).div(t).exp();  // (c, k)
    const torch::Tensor votes_for =
        labels.index_select(0, index.slice(1, 0, kk).reshape(-1)).view({-1, kk});  // (c, k)
    chunks.push_back(torch::zeros({q.size(0), num_classes}, q.options())
                         .scatter_add_(1, votes_for, weight));  // (c, C)
  }
  return torch::cat(chunks, 0);  // (N_v, C)
}

TopkAccuracy knn_accuracy(const torch::Tensor& train_feats, const torch::Tensor& train_labels,
                          const torch::Tensor& val_feats, const torch::Tensor& val_labels,
                          int64_t num_classes, int64_t k, double t, int64_t val_chunk) {
  return topk_accuracy(
      knn_class_scores(train_feats, train_labels, val_feats, num_classes, k, t, val_chunk),
      val_labels);
}

}  // namespace ablate
