// MAE and CrossMAE decoders (see decoder.h).
#include "methods/decoder.h"

#include "harness/check.h"
#include "methods/masking.h"
#include "pch/torch_pch.h"

namespace ablate {
namespace {

torch::Tensor normal_token(int64_t dim, const torch::TensorOptions& to) {
  auto t = torch::empty({1, 1, dim}, to);
  torch::NoGradGuard no_grad;
  return t.normal_(0.0, 0.02);
}

}  // namespace

MaeDecoderImpl::MaeDecoderImpl(const VitOptions& enc, const ModelConfig& m, const torch::TensorOptions& to) {
  const int64_t d = m.dec_dim;
  embed = register_module("embed", Linear(enc.dim, d, true, to));
  mask_token = register_parameter("mask_token", normal_token(d, to));
  auto pos = torch::cat({torch::zeros({1, d}), sincos_pos_embed_2d(d, enc.grid())}, 0);
  pos_embed = register_buffer("pos_embed", pos.unsqueeze(0).to(to));
  auto list = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < m.dec_depth; ++i) {
    blocks.push_back(Block(d, m.dec_heads, 4 * d, 1, true, 0.0, to));
    list->push_back(blocks.back());
  }
  norm = register_module("norm", LayerNorm(d, to));
  pred = register_module("pred", Linear(d, enc.patch * enc.patch * 3, true, to));
}

DecoderOutput MaeDecoderImpl::forward(const torch::Tensor& latent, const std::vector<torch::Tensor>&,
                                      const torch::Tensor& ids_restore, const torch::Tensor& ids_rec) {
  auto x = embed(latent);  // (B, 1 + N_vis, d)
  const int64_t B = x.size(0), L = ids_restore.size(1), n_mask = L + 1 - x.size(1);
  auto masks = mask_token.to(x.dtype()).expand({B, n_mask, -1});
  auto grid = gather_tokens(torch::cat({x.slice(1, 1), masks}, 1), ids_restore);  // (B, L, d)
  x = torch::cat({x.slice(1, 0, 1), grid}, 1) + pos_embed;                        // (B, 1 + L, d)
  for (auto& block : blocks) x = block(x);
  auto all_hidden = norm(x).slice(1, 1);               // (B, L, d)
  auto hidden = gather_tokens(all_hidden, ids_rec);  // (B, N_rec, d)
  return {pred(hidden), hidden, all_hidden};
}

CrossDecoderImpl::CrossDecoderImpl(const VitOptions& enc, const ModelConfig& m, const torch::TensorOptions& to)
    : feature_map_(m.dec_feature_map) {
  const int64_t d = m.dec_dim;
  mask_token = register_parameter("mask_token", normal_token(d, to));
  pos_embed = register_buffer("pos_embed", sincos_pos_embed_2d(d, enc.grid()).unsqueeze(0).to(to));
  auto list = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < m.dec_depth; ++i) {
    blocks.push_back(CrossBlock(d, enc.dim, m.dec_heads, m.dec_self_attn, to));
    list->push_back(blocks.back());
  }
  if (feature_map_) {
    // Weights over the k = depth encoder blocks, xavier-uniform like every Linear (see decoder.h).
    mix = register_module("mix", Linear(enc.depth, m.dec_depth, false, to));
    auto norms = register_module("memory_norms", torch::nn::ModuleList());
    for (int64_t i = 0; i < m.dec_depth; ++i) {
      memory_norms.push_back(LayerNorm(enc.dim, to));
      norms->push_back(memory_norms.back());
    }
  }
  norm = register_module("norm", LayerNorm(d, to));
  pred = register_module("pred", Linear(d, enc.patch * enc.patch * 3, true, to));
}

DecoderOutput CrossDecoderImpl::forward(const torch::Tensor& latent,
                                        const std::vector<torch::Tensor>& block_outputs,
                                        const torch::Tensor&, const torch::Tensor& ids_rec) {
  const int64_t B = ids_rec.size(0);
  auto pos = gather_tokens(pos_embed.expand({B, -1, -1}), ids_rec);  // (B, N_rec, d)
  auto x = mask_token + pos;
  torch::Tensor mixed;  // (B, 1 + N_vis, D, dec_depth)
  if (feature_map_) {
    ABLATE_CHECK(int64_t(block_outputs.size()) == mix->weight.size(1),
                 "feature mapping needs {} encoder block outputs, got {}", mix->weight.size(1),
                 block_outputs.size());
    mixed = mix(torch::stack(block_outputs, -1));
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    torch::Tensor memory = latent;
    if (feature_map_) memory = memory_norms[i](mixed.select(-1, int64_t(i)));
    x = blocks[i](x, memory);
  }
  auto hidden = norm(x);
  return {pred(hidden), hidden, {}};  // no token for the patches it does not reconstruct
}

std::shared_ptr<DecoderImpl> make_decoder(const ModelConfig& model, VisionTransformer& encoder,
                                          const torch::TensorOptions& to) {
  if (model.decoder == DecoderKind::mae) return std::make_shared<MaeDecoderImpl>(encoder->options(), model, to);
  return std::make_shared<CrossDecoderImpl>(encoder->options(), model, to);
}

}  // namespace ablate
