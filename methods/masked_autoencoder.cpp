// Shared encoder/decoder pass of the masked-autoencoder methods (see masked_autoencoder.h).
#include "methods/masked_autoencoder.h"

#include "methods/losses.h"
#include "methods/pch/torch_pch.h"

namespace ablate {

MaskedAutoencoder::MaskedAutoencoder(const RunConfig& config) : method_(config.method) {
  encoder_ = register_module("encoder", VisionTransformer(VitOptions::from(config.model)));
  decoder_ = register_module("decoder", make_decoder(config.model, encoder_));
  patches_ = encoder_->options().num_patches();
  n_keep_ = visible_count(patches_, method_.mask_ratio);
  n_rec_ = recon_count(patches_, method_.mask_ratio, method_.recon_ratio);
}

MaskedAutoencoder::ViewOutput MaskedAutoencoder::run_view(const torch::Tensor& images,
                                                          const torch::Tensor& tokens,
                                                          const MaskPlan& plan) {
  std::vector<torch::Tensor> blocks;
  ViewOutput out;
  out.latent = encoder_->encode(tokens, plan.split.ids_keep,
                                decoder_->wants_block_outputs() || !final_norm_ ? &blocks : nullptr);
  if (!final_norm_) out.latent = blocks.back();
  out.decoded = decoder_->forward(out.latent, blocks, plan.split.ids_restore, plan.ids_rec);
  auto target = patch_targets(images, encoder_->options().patch, plan.ids_rec, method_.norm_pix_loss);
  out.loss_re = reconstruction_loss(out.decoded.pred, target);
  return out;
}

LossTerms MaskedAutoencoder::forward(const StepInputs& in) {
  auto tokens = encoder_->embed(in.images);
  auto loss = run_view(in.images, tokens, plan(in.images, tokens, in.psts_weights)).loss_re;  // (B,)
  auto total = loss.mean();
  return {total, {{"loss_re", total}}, loss};
}

MaskPlan MaskedAutoencoder::random_plan(int64_t batch, torch::Device device) const {
  MaskPlan p;
  p.split = random_masking(batch, patches_, method_.mask_ratio, device);
  // The masked ids are in random order already, so their first n_rec are a uniform subset.
  p.ids_rec = p.split.ids_masked.slice(1, 0, n_rec_);
  return p;
}

torch::Tensor MaskedAutoencoder::reconstruct(const torch::Tensor& images, torch::Tensor* shown_mask,
                                             torch::Tensor* selected_mask) {
  torch::NoGradGuard no_grad;
  const int64_t p = encoder_->options().patch;
  auto tokens = encoder_->embed(images);
  const MaskPlan mp = plan(images, tokens, {});
  auto pred = run_view(images, tokens, mp).decoded.pred.to(torch::kFloat32);  // (B, N_rec, P)
  if (method_.norm_pix_loss) {
    auto raw = patch_targets(images, p, mp.ids_rec, false);
    pred = pred * torch::sqrt(raw.var(-1, true, true) + 1e-6) + raw.mean(-1, true);
  }
  auto shown = ids_to_mask(mp.split.ids_keep, patches_);  // (B, L)
  auto canvas = patchify(images.to(torch::kFloat32), p) * shown.unsqueeze(-1);
  canvas.scatter_(1, mp.ids_rec.unsqueeze(-1).expand({-1, -1, canvas.size(2)}), pred);
  if (shown_mask) *shown_mask = shown;
  if (selected_mask) *selected_mask = ids_to_mask(mp.ids_rec, patches_);
  return unpatchify(canvas, p);
}

}  // namespace ablate
