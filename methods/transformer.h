// Transformer building blocks shared by the ViT encoder and both decoders: Linear, LayerNorm,
// self-attention, cross-attention, MLP, the pre-norm Block (optionally with parallel branches) and
// the CrossMAE cross-attention block.
//
// The layers are our own small modules instead of torch::nn::Linear/LayerNorm because those always
// allocate on the CPU: ours create their parameters with given TensorOptions, so a whole ViT-2B can
// be built on the `meta` device (shapes only, no memory) to count its parameters. Initialisation
// follows MAE: xavier_uniform weights, zero biases, LayerNorm weight 1 / bias 0 (eps 1e-6 as in MAE's
// model factories and timm; MAE's MaskedAutoencoderViT class default, 1e-5, is the `eps` argument).
// Attention uses at::scaled_dot_product_attention (flash / memory-efficient kernels on CUDA).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace ablate {

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in, int64_t out, bool bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // (..., in) -> (..., out)
  torch::Tensor weight, bias;                     // (out, in), (out) or undefined
};
TORCH_MODULE(Linear);

class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, const torch::TensorOptions& options, double eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);  // (..., dim)
  torch::Tensor weight, bias;
  double eps;
};
TORCH_MODULE(LayerNorm);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // fc1 -> GELU (erf) -> fc2
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Mlp);

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t heads, bool qkv_bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // (B, N, dim) -> (B, N, dim)
  int64_t heads;
  Linear qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(Attention);

// Queries from the decoder (width dim), keys/values projected from the encoder memory (width mem_dim).
class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t dim, int64_t mem_dim, int64_t heads, bool qkv_bias,
                     const torch::TensorOptions& options);
  // x (B, Q, dim), memory (B, M, mem_dim) -> (B, Q, dim)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory);
  int64_t heads;
  Linear q{nullptr}, kv{nullptr}, proj{nullptr};
};
TORCH_MODULE(CrossAttention);

// Per-sample stochastic depth: drops the whole residual branch of a sample with probability `rate`
// in training and rescales the kept ones by 1 / (1 - rate).
torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training);

// Pre-norm block  x = x + sum_b Attn_b(LN_b(x));  x = x + sum_b MLP_b(LN'_b(x)).
// branches = 1 is the standard ViT block (parameter names norm1/attn/norm2/mlp, as in MAE); the
// extra branches of a parallel block are named norm1_<b>, attn_<b>, norm2_<b>, mlp_<b>.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t heads, int64_t mlp_hidden, int64_t branches, bool qkv_bias,
            double drop_path_rate, const torch::TensorOptions& options, double norm_eps = 1e-6);
  torch::Tensor forward(const torch::Tensor& x);  // (B, N, dim)
  std::vector<LayerNorm> norm1, norm2;
  std::vector<Attention> attn;
  std::vector<Mlp> mlp;
  double drop_path_rate;
};
TORCH_MODULE(Block);

// CrossMAE decoder block: [x = x + SelfAttn(LN0(x))]  x = x + CrossAttn(LN1(x), memory);
// x = x + MLP(LN2(x)). All projections with bias, as in the public CrossMAE code.
class CrossBlockImpl : public torch::nn::Module {
 public:
  CrossBlockImpl(int64_t dim, int64_t mem_dim, int64_t heads, bool self_attn,
                 const torch::TensorOptions& options);
  // x (B, Q, dim), memory (B, M, mem_dim) -> (B, Q, dim)
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory);
  LayerNorm norm0{nullptr}, norm1{nullptr}, norm2{nullptr};
  Attention self_attn{nullptr};
  CrossAttention cross_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(CrossBlock);

}  // namespace ablate
