// Weighted k-nearest-neighbour classification of frozen features, as in DINO and Scale-MAE: the
// standard training-free probe of a pre-trained encoder, and the one Scale-MAE evaluates at several
// input scales. Also the top-1 / top-5 accuracy of class scores, which all three evaluation
// protocols (KNN, linear probe, fine-tuning) report.
//
// Votes: features are L2-normalised, the k training samples with the highest cosine similarity to a
// query vote for their class with weight exp(sim / T), and the class scores are the summed votes.
//
// Ties are broken deterministically, toward the lower index: among training samples with equal
// similarity the one with the lower row index is a neighbour first, and among classes with equal
// score the lower class index ranks first (so a query whose neighbours all vote 0 for classes
// outside their own still ranks the unvoted classes 0, 1, 2, ...). Both come from stable sorts.
#pragma once

#include <cstdint>

#include <torch/types.h>

namespace ablate {

struct TopkAccuracy {
  double top1 = 0.0;  // fraction of samples whose label is the highest-scoring class
  double top5 = 0.0;  // fraction whose label is among the 5 highest (all classes when C <= 5)
};

// scores (N, C) any float dtype, labels (N) int64 in [0, C). Ties rank the lower class first.
TopkAccuracy topk_accuracy(const torch::Tensor& scores, const torch::Tensor& labels);

// Summed exp(sim / t) votes of the k nearest training samples, (N_val, C) float32, on the features'
// device. train_feats (N_train, D), train_labels (N_train) int64, val_feats (N_val, D). k is capped
// at N_train. Queries are processed `val_chunk` rows at a time: memory O(val_chunk * N_train).
torch::Tensor knn_class_scores(const torch::Tensor& train_feats, const torch::Tensor& train_labels,
                               const torch::Tensor& val_feats, int64_t num_classes, int64_t k,
                               double t, int64_t val_chunk = 1024);

// Top-1 / top-5 accuracy of the KNN classifier above on (val_feats, val_labels).
TopkAccuracy knn_accuracy(const torch::Tensor& train_feats, const torch::Tensor& train_labels,
                          const torch::Tensor& val_feats, const torch::Tensor& val_labels,
                          int64_t num_classes, int64_t k, double t, int64_t val_chunk = 1024);

}  // namespace ablate
