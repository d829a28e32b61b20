// The two pixel decoders. Both answer for the patches ids_rec (B, N_rec) the method chose to
// reconstruct, so methods do not care which one is configured.
//
//  * MAE (He et al. 2022): embed D -> d, append mask tokens, unshuffle to grid order with
//    ids_restore, add the fixed decoder position embedding, self-attention blocks over all L + 1
//    tokens, norm, predict p*p*3 pixels; the reconstructed patches are then gathered from the grid.
//  * CrossMAE (Fu et al. 2024): queries are the mask token + decoder position of each patch to
//    reconstruct; every block cross-attends to the encoder tokens (keys/values projected D -> d in
//    the block), optionally with self-attention among the queries. With feature mapping, decoder
//    block i attends to its own learned linear (softmax-free) mix of all encoder block outputs,
//    LayerNorm'ed; the last block reuses the encoder's final norm (parameter count as in
//    harness/model_sizes.cpp's decoder_params).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "harness/config.h"
#include "methods/transformer.h"
#include "methods/vit.h"

namespace ablate {

struct DecoderOutput {
  torch::Tensor pred;    // (B, N_rec, p*p*3) predicted (normalised) pixels
  torch::Tensor hidden;  // (B, N_rec, d) decoder tokens after its final norm (cross-prediction)
  // (B, L, d) every patch position's decoder token after the final norm, grid order (MAE decoder
  // only: the cross decoder has no token for a patch it does not reconstruct; undefined there).
  torch::Tensor all_hidden;
};

class DecoderImpl : public torch::nn::Module {
 public:
  // latent (B, 1 + N_vis, D) encoder output; block_outputs the encoder's per-block outputs (only
  // filled when wants_block_outputs()); ids_restore (B, L); ids_rec (B, N_rec).
  virtual DecoderOutput forward(const torch::Tensor& latent,
                                const std::vector<torch::Tensor>& block_outputs,
                                const torch::Tensor& ids_restore, const torch::Tensor& ids_rec) = 0;
  virtual bool wants_block_outputs() const { return false; }
};

class MaeDecoderImpl : public DecoderImpl {
 public:
  MaeDecoderImpl(const VitOptions& encoder, const ModelConfig& model, const torch::TensorOptions& to);
  DecoderOutput forward(const torch::Tensor& latent, const std::vector<torch::Tensor>& block_outputs,
                        const torch::Tensor& ids_restore, const torch::Tensor& ids_rec) override;

  Linear embed{nullptr};
  torch::Tensor mask_token;  // (1, 1, d)
  torch::Tensor pos_embed;   // buffer (1, 1 + L, d), cls row 0
  std::vector<Block> blocks;
  LayerNorm norm{nullptr};
  Linear pred{nullptr};
};

class CrossDecoderImpl : public DecoderImpl {
 public:
  // `encoder_norm` is the encoder's final LayerNorm, reused (not re-registered) by the last block
  // under feature mapping.
  CrossDecoderImpl(const VitOptions& encoder, const ModelConfig& model, LayerNorm encoder_norm,
                   const torch::TensorOptions& to);
  DecoderOutput forward(const torch::Tensor& latent, const std::vector<torch::Tensor>& block_outputs,
                        const torch::Tensor& ids_restore, const torch::Tensor& ids_rec) override;
  bool wants_block_outputs() const override { return feature_map_; }

  torch::Tensor mask_token;  // (1, 1, d)
  torch::Tensor pos_embed;   // buffer (1, L, d)
  std::vector<CrossBlock> blocks;
  Linear mix{nullptr};                  // feature mapping: encoder depth -> decoder depth, no bias
  std::vector<LayerNorm> memory_norms;  // feature mapping: one per decoder block but the last
  LayerNorm norm{nullptr};
  Linear pred{nullptr};

 private:
  bool feature_map_;
  LayerNorm encoder_norm_;
};

// model.decoder "mae" | "cross" for an encoder built from the same model config.
std::shared_ptr<DecoderImpl> make_decoder(const ModelConfig& model, VisionTransformer& encoder,
                                          const torch::TensorOptions& to = {});

}  // namespace ablate
