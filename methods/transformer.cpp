// Transformer building blocks (see transformer.h): MAE initialisation, pre-norm residuals, SDPA.
#include "methods/transformer.h"

#include <string>

#include "harness/check.h"
#include "methods/pch/torch_pch.h"

namespace ablate {

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({out, in}, options));
  {
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(weight);
  }
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}, options));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) { return torch::linear(x, weight, bias); }

LayerNormImpl::LayerNormImpl(int64_t dim, const torch::TensorOptions& options, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}, options));
  bias = register_parameter("bias", torch::zeros({dim}, options));
}

torch::Tensor LayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden, const torch::TensorOptions& options) {
  fc1 = register_module("fc1", Linear(dim, hidden, true, options));
  fc2 = register_module("fc2", Linear(hidden, dim, true, options));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2(torch::gelu(fc1(x))); }

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads_, bool qkv_bias,
                             const torch::TensorOptions& options)
    : heads(heads_) {
  ABLATE_CHECK(dim % heads == 0, "width {} not divisible by {} heads", dim, heads);
  qkv = register_module("qkv", Linear(dim, 3 * dim, qkv_bias, options));
  proj = register_module("proj", Linear(dim, dim, true, options));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  auto qkv_ = qkv(x).view({B, N, 3, heads, C / heads}).permute({2, 0, 3, 1, 4});  // (3, B, h, N, hd)
  auto out = at::scaled_dot_product_attention(qkv_[0], qkv_[1], qkv_[2]);         // (B, h, N, hd)
  return proj(out.transpose(1, 2).reshape({B, N, C}));
}

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t mem_dim, int64_t heads_, bool qkv_bias,
                                       const torch::TensorOptions& options)
    : heads(heads_) {
  ABLATE_CHECK(dim % heads == 0, "width {} not divisible by {} heads", dim, heads);
  q = register_module("q", Linear(dim, dim, qkv_bias, options));
  kv = register_module("kv", Linear(mem_dim, 2 * dim, qkv_bias, options));
  proj = register_module("proj", Linear(dim, dim, true, options));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& memory) {
  const int64_t B = x.size(0), Q = x.size(1), C = x.size(2), M = memory.size(1);
  auto q_ = q(x).view({B, Q, heads, C / heads}).transpose(1, 2);                      // (B, h, Q, hd)
  auto kv_ = kv(memory).view({B, M, 2, heads, C / heads}).permute({2, 0, 3, 1, 4});  // (2, B, h, M, hd)
  auto out = at::scaled_dot_product_attention(q_, kv_[0], kv_[1]);                   // (B, h, Q, hd)
  return proj(out.transpose(1, 2).reshape({B, Q, C}));
}

torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training) {
  if (!training || rate <= 0.0) return x;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  auto keep = torch::empty(shape, x.options()).bernoulli_(1.0 - rate);  // (B, 1, 1)
  return x * keep / (1.0 - rate);
}

BlockImpl::BlockImpl(int64_t dim, int64_t heads, int64_t mlp_hidden, int64_t branches, bool qkv_bias,
                     double drop_path_rate_, const torch::TensorOptions& options, double norm_eps)
    : drop_path_rate(drop_path_rate_) {
  ABLATE_CHECK(branches >= 1, "a block needs at least one branch");
  for (int64_t b = 0; b < branches; ++b) {
    auto name = [b](const char* base) { return b == 0 ? std::string(base) : fmt::format("{}_{}", base, b); };
    norm1.push_back(register_module(name("norm1"), LayerNorm(dim, options, norm_eps)));
    attn.push_back(register_module(name("attn"), Attention(dim, heads, qkv_bias, options)));
    norm2.push_back(register_module(name("norm2"), LayerNorm(dim, options, norm_eps)));
    mlp.push_back(register_module(name("mlp"), Mlp(dim, mlp_hidden, options)));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x_in) {
  auto branch_sum = [&](auto&& branch) {
    torch::Tensor sum = branch(0);
    for (size_t b = 1; b < attn.size(); ++b) sum = sum + branch(b);
    return sum;
  };
  auto x = x_in + drop_path(branch_sum([&](size_t b) { return attn[b](norm1[b](x_in)); }),
                            drop_path_rate, is_training());
  return x + drop_path(branch_sum([&](size_t b) { return mlp[b](norm2[b](x)); }), drop_path_rate,
                       is_training());
}

CrossBlockImpl::CrossBlockImpl(int64_t dim, int64_t mem_dim, int64_t heads, bool with_self_attn,
                               const torch::TensorOptions& options) {
  if (with_self_attn) {
    norm0 = register_module("norm0", LayerNorm(dim, options));
    self_attn = register_module("self_attn", Attention(dim, heads, true, options));
  }
  norm1 = register_module("norm1", LayerNorm(dim, options));
  cross_attn = register_module("cross_attn", CrossAttention(dim, mem_dim, heads, true, options));
  norm2 = register_module("norm2", LayerNorm(dim, options));
  mlp = register_module("mlp", Mlp(dim, 4 * dim, options));
}

torch::Tensor CrossBlockImpl::forward(const torch::Tensor& x_in, const torch::Tensor& memory) {
  auto x = x_in;
  if (self_attn) x = x + self_attn(norm0(x));
  x = x + cross_attn(norm1(x), memory);
  return x + mlp(norm2(x));
}

}  // namespace ablate
