// KNN voting against hand-computed answers: exp(sim / T) weighting (including a case where it
// overturns the plain majority), top-5, tie order, and invariance to the query chunk size.
#include "methods/knn.h"

#include "pch/torch_pch.h"

#include <cmath>

#include "tests/support/catch.h"

using namespace ablate;

namespace {

// Unit vector in the plane at angle `deg` from the x axis, padded to 3-D.
std::vector<float> at_angle(double deg) {
  const double r = deg * M_PI / 180.0;
  return {static_cast<float>(std::cos(r)), static_cast<float>(std::sin(r)), 0.0f};
}

torch::Tensor rows(const std::vector<std::vector<float>>& v) {
  std::vector<torch::Tensor> r;
  for (const auto& x : v) r.push_back(torch::tensor(x));
  return torch::stack(r);
}

}  // namespace

TEST_CASE("weighted votes overturn the plain majority", "[knn]") {
  // Query along x. One class-0 neighbour at 0 degrees (sim 1), two class-1 neighbours at 60 degrees
  // (sim 0.5). Majority says class 1; weights say exp(1/T) vs 2 exp(0.5/T).
  const torch::Tensor train = rows({at_angle(0), at_angle(60), at_angle(-60)}) * 3.0;  // not unit
  const torch::Tensor labels = torch::tensor({0, 1, 1}, torch::kInt64);
  const torch::Tensor query = rows({at_angle(0)}) * 0.5;
  const double t = 0.07;
  const torch::Tensor scores = knn_class_scores(train, labels, query, 3, 3, t);
  REQUIRE(scores.sizes() == torch::IntArrayRef({1, 3}));
  const torch::Tensor expect =
      torch::tensor({{std::exp(1.0 / t), 2.0 * std::exp(0.5 / t), 0.0}}, torch::kFloat32);
  CHECK(torch::allclose(scores, expect, 1e-4));
  const auto acc0 = knn_accuracy(train, labels, query, torch::tensor({0}, torch::kInt64), 3, 3, t);
  CHECK(acc0.top1 == 1.0);
  // At a high temperature the weights flatten and the majority wins instead: 1 < 2 exp(-0.5/T)
  // needs T > 0.5 / ln 2 = 0.72.
  const auto acc_hot =
      knn_accuracy(train, labels, query, torch::tensor({1}, torch::kInt64), 3, 3, 5.0);
  CHECK(acc_hot.top1 == 1.0);
}

TEST_CASE("k limits the voters to the most similar samples", "[knn]") {
  // Neighbours at 10, 20, 30, 40 degrees with classes 2, 0, 0, 1; k = 2 keeps classes 2 and 0.
  const torch::Tensor train = rows({at_angle(40), at_angle(10), at_angle(30), at_angle(20)});
  const torch::Tensor labels = torch::tensor({1, 2, 0, 0}, torch::kInt64);
  const torch::Tensor query = rows({at_angle(0)});
  const double t = 0.1;
  const torch::Tensor s = knn_class_scores(train, labels, query, 3, 2, t);
  const auto vote = [&](double deg) { return std::exp(std::cos(deg * M_PI / 180) / t); };
  CHECK(torch::allclose(s, torch::tensor({{vote(20), 0.0, vote(10)}}, torch::kFloat32), 1e-4));
  // k above the training set size uses every sample.
  const torch::Tensor all = knn_class_scores(train, labels, query, 3, 50, t);
  CHECK(torch::allclose(
      all, torch::tensor({{vote(20) + vote(30), vote(40), vote(10)}}, torch::kFloat32), 1e-4));
}

TEST_CASE("top-5 counts labels among the five best classes, ties to the lower class", "[knn]") {
  // Scores of 7 classes; label ranks: sample 0 label 3 -> 1st; sample 1 label 6 -> 5th;
  // sample 2 label 0 -> last; sample 3: classes 1 and 4 tie for the top, the lower (1) ranks first.
  const torch::Tensor scores = torch::tensor({{0.1, 0.2, 0.3, 0.9, 0.0, 0.0, 0.0},
                                              {0.9, 0.8, 0.7, 0.6, 0.0, 0.0, 0.5},
                                              {0.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4},
                                              {0.0, 0.7, 0.0, 0.0, 0.7, 0.0, 0.0}});
  const auto a = topk_accuracy(scores, torch::tensor({3, 6, 0, 1}, torch::kInt64));
  CHECK(a.top1 == 0.5);
  CHECK(a.top5 == 0.75);
  const auto b = topk_accuracy(scores.slice(0, 3, 4), torch::tensor({4}, torch::kInt64));
  CHECK(b.top1 == 0.0);
  CHECK(b.top5 == 1.0);
}

TEST_CASE("equal similarities pick the lower training index", "[knn]") {
  // Two identical training vectors of different classes, k = 1: row 0 (class 1) must be chosen.
  const torch::Tensor train = rows({at_angle(30), at_angle(30), at_angle(90)});
  const torch::Tensor labels = torch::tensor({1, 0, 0}, torch::kInt64);
  const torch::Tensor s = knn_class_scores(train, labels, rows({at_angle(0)}), 2, 1, 0.07);
  CHECK(s[0][1].item<double>() > 0.0);
  CHECK(s[0][0].item<double>() == 0.0);
}

TEST_CASE("results do not depend on the query chunk size", "[knn]") {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const torch::Tensor train = torch::randn({300, 16}, gen);
  const torch::Tensor labels = torch::randint(0, 6, {300}, gen);
  const torch::Tensor val = torch::randn({97, 16}, gen);
  const torch::Tensor val_labels = torch::randint(0, 6, {97}, gen);
  const torch::Tensor whole = knn_class_scores(train, labels, val, 6, 20, 0.07, 1000);
  for (int64_t chunk : {1, 10, 32, 96}) {
    CHECK(torch::allclose(knn_class_scores(train, labels, val, 6, 20, 0.07, chunk), whole));
  }
  // The weights sum over exactly k = 20 neighbours: each row's total equals the 20 largest
  // exp(sim/T).
  const torch::Tensor sim = torch::nn::functional::normalize(val, {}).matmul(
      torch::nn::functional::normalize(train, {}).t());
  const torch::Tensor expect = std::get<0>(sim.topk(20, 1)).div(0.07).exp().sum(1);
  CHECK(torch::allclose(whole.sum(1), expect, 1e-4, 1e-3));
  const auto a = knn_accuracy(train, labels, val, val_labels, 6, 20, 0.07, 5);
  const auto b = knn_accuracy(train, labels, val, val_labels, 6, 20, 0.07, 97);
  CHECK(a.top1 == b.top1);
  CHECK(a.top5 == b.top5);
}

TEST_CASE("KNN on CUDA matches the CPU result", "[knn][gpu]") {
  if (!torch::cuda::is_available()) ABLATE_SKIP("no CUDA device");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
  const torch::Tensor train = torch::randn({2000, 64}, gen);
  const torch::Tensor labels = torch::randint(0, 10, {2000}, gen);
  const torch::Tensor val = torch::randn({500, 64}, gen);
  const torch::Tensor cpu = knn_class_scores(train, labels, val, 10, 20, 0.07, 128);
  const torch::Tensor cuda =
      knn_class_scores(train.cuda(), labels.cuda(), val.cuda(), 10, 20, 0.07, 128);
  CHECK(cuda.device().is_cuda());
  CHECK(torch::allclose(cuda.cpu(), cpu, 1e-3, 1e-2));
}
