// ViT encoder (see vit.h): MAE's layout and initialisation, sin-cos positions, optional GSD scaling.
#include "methods/vit.h"

#include <cmath>

#include "harness/check.h"
#include "harness/model_sizes.h"
#include "methods/masking.h"
#include "methods/pch/torch_pch.h"

namespace ablate {
namespace {

// MAE's get_1d_sincos_pos_embed_from_grid for positions `pos` (..., M): (..., M, dim) as
// [sin(pos * w), cos(pos * w)], w_k = 10000^(-k / (dim/2)), in pos's dtype.
torch::Tensor sincos_1d(const torch::Tensor& pos, int64_t dim) {
  auto omega = torch::arange(dim / 2, pos.options()) / (dim / 2.0);
  omega = torch::pow(10000.0, -omega);                 // (dim/2)
  auto out = pos.unsqueeze(-1) * omega;                // (..., M, dim/2)
  return torch::cat({torch::sin(out), torch::cos(out)}, -1);
}

// Column and row index of each of the grid^2 tokens, row-major: ((L), (L)).
std::pair<torch::Tensor, torch::Tensor> grid_coords(int64_t grid, const torch::TensorOptions& o) {
  auto n = torch::arange(grid * grid, o.dtype(torch::kInt64));
  return {torch::remainder(n, grid).to(o.dtype()), torch::div(n, grid, "floor").to(o.dtype())};
}

}  // namespace

VitOptions VitOptions::from(const ModelConfig& model) {
  const VitSize& s = vit_size(model.size);
  if (model.img_size % model.patch_size != 0)
    throw ConfigError("", "model.img_size",
                      fmt::format("{} is not a multiple of model.patch_size {}", model.img_size,
                                  model.patch_size));
  VitOptions o;
  o.img_size = model.img_size;
  o.patch = model.patch_size;
  o.dim = s.dim;
  o.depth = s.depth;
  o.heads = s.heads;
  o.branches = s.branches;
  o.mlp_hidden = std::lround(s.dim * s.mlp_ratio);
  o.qkv_bias = model.qkv_bias;
  o.drop_path = model.drop_path;
  return o;
}

torch::Tensor sincos_pos_embed_2d(int64_t dim, int64_t grid) {
  ABLATE_CHECK(dim % 4 == 0, "sin-cos position embedding needs a width divisible by 4, got {}", dim);
  auto [col, row] = grid_coords(grid, torch::TensorOptions().dtype(torch::kFloat64));
  return torch::cat({sincos_1d(col, dim / 2), sincos_1d(row, dim / 2)}, -1).to(torch::kFloat32);
}

torch::Tensor sincos_pos_embed_2d_scaled(int64_t dim, int64_t grid, const torch::Tensor& scale) {
  ABLATE_CHECK(dim % 4 == 0, "sin-cos position embedding needs a width divisible by 4, got {}", dim);
  auto o = scale.options().dtype(torch::kFloat32);
  auto [col, row] = grid_coords(grid, o);
  auto s = scale.to(torch::kFloat32).unsqueeze(1);  // (B, 1)
  return torch::cat({sincos_1d(s * col, dim / 2), sincos_1d(s * row, dim / 2)}, -1);  // (B, L, dim)
}

torch::Tensor patchify(const torch::Tensor& images, int64_t p) {
  const int64_t B = images.size(0), h = images.size(2) / p, w = images.size(3) / p;
  ABLATE_CHECK(images.size(2) % p == 0 && images.size(3) % p == 0, "image not divisible by patch {}", p);
  return images.reshape({B, 3, h, p, w, p}).permute({0, 2, 4, 3, 5, 1}).reshape({B, h * w, p * p * 3});
}

torch::Tensor unpatchify(const torch::Tensor& patches, int64_t p) {
  const int64_t B = patches.size(0), h = std::lround(std::sqrt(double(patches.size(1))));
  ABLATE_CHECK(h * h == patches.size(1), "{} patches do not form a square", patches.size(1));
  return patches.reshape({B, h, h, p, p, 3}).permute({0, 5, 1, 3, 2, 4}).reshape({B, 3, h * p, h * p});
}

PatchEmbedImpl::PatchEmbedImpl(int64_t patch_, int64_t dim, const torch::TensorOptions& options)
    : patch(patch_) {
  const int64_t fan_in = 3 * patch * patch;
  weight = register_parameter("weight", torch::empty({dim, 3, patch, patch}, options));
  bias = register_parameter("bias", torch::empty({dim}, options));
  torch::NoGradGuard no_grad;
  // MAE initialises the conv like a Linear on its flattened weight; the bias keeps Conv2d's default.
  torch::nn::init::xavier_uniform_(weight.view({dim, fan_in}));
  bias.uniform_(-1.0 / std::sqrt(double(fan_in)), 1.0 / std::sqrt(double(fan_in)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  auto x = torch::conv2d(images, weight, bias, {patch, patch});  // (B, D, h, w)
  return x.flatten(2).transpose(1, 2);                            // (B, L, D)
}

VisionTransformerImpl::VisionTransformerImpl(const VitOptions& o, const torch::TensorOptions& to)
    : options_(o) {
  ABLATE_CHECK(o.img_size % o.patch == 0, "image {} not divisible by patch {}", o.img_size, o.patch);
  patch_embed = register_module("patch_embed", PatchEmbed(o.patch, o.dim, to));
  cls_token = register_parameter("cls_token", torch::empty({1, 1, o.dim}, to));
  {
    torch::NoGradGuard no_grad;
    cls_token.normal_(0.0, 0.02);
  }
  auto pos = sincos_pos_embed_2d(o.dim, o.grid());  // (L, D)
  if (o.cls_pos_embed) pos = torch::cat({torch::zeros({1, o.dim}), pos}, 0);
  pos_embed = register_buffer("pos_embed", pos.unsqueeze(0).to(to));
  auto list = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.depth; ++i) {
    const double rate = o.depth > 1 ? o.drop_path * double(i) / double(o.depth - 1) : 0.0;
    blocks.push_back(Block(o.dim, o.heads, o.mlp_hidden, o.branches, o.qkv_bias, rate, to, o.norm_eps));
    list->push_back(blocks.back());
  }
  norm = register_module("norm", LayerNorm(o.dim, to, o.norm_eps));
}

torch::Tensor VisionTransformerImpl::embed(const torch::Tensor& images, const torch::Tensor& gsd_scale) {
  ABLATE_CHECK(images.dim() == 4 && images.size(2) == images.size(3) && images.size(2) >= options_.patch,
               "the encoder takes square images of at least one patch, got {}", c10::str(images.sizes()));
  auto x = patch_embed(images);  // (B, g^2, D)
  const int64_t grid = images.size(2) / options_.patch;
  if (gsd_scale.defined())
    return x + sincos_pos_embed_2d_scaled(options_.dim, grid, gsd_scale).to(x.dtype());
  if (grid == options_.grid()) return x + (options_.cls_pos_embed ? pos_embed.slice(1, 1) : pos_embed);
  return x + sincos_pos_embed_2d(options_.dim, grid).to(x.device(), x.dtype()).unsqueeze(0);
}

torch::Tensor VisionTransformerImpl::encode(const torch::Tensor& tokens, const torch::Tensor& ids_keep,
                                            std::vector<torch::Tensor>* block_outputs) {
  auto x = ids_keep.defined() ? gather_tokens(tokens, ids_keep) : tokens;  // (B, N_vis, D)
  auto cls = options_.cls_pos_embed ? cls_token + pos_embed.slice(1, 0, 1) : cls_token;  // (1, 1, D)
  x = torch::cat({cls.expand({x.size(0), -1, -1}).to(x.dtype()), x}, 1);  // (B, 1 + N_vis, D)
  for (auto& block : blocks) {
    x = block(x);
    if (block_outputs) block_outputs->push_back(x);
  }
  return norm(x);
}

torch::Tensor VisionTransformerImpl::forward_encoder(const torch::Tensor& images,
                                                     const torch::Tensor& ids_keep,
                                                     std::vector<torch::Tensor>* block_outputs) {
  return encode(embed(images), ids_keep, block_outputs);
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& images, bool gsd_relative) {
  torch::Tensor gsd;
  if (gsd_relative && images.size(2) != options_.img_size)
    gsd = torch::full({images.size(0)}, double(options_.img_size) / double(images.size(2)),
                      images.options().dtype(torch::kFloat32));
  return encode(embed(images, gsd), {}).select(1, 0);  // (B, D)
}

}  // namespace ablate
