// SelectiveMAE step (see selective_mae.h).
#include "methods/selective_mae.h"

#include "harness/check.h"
#include "pch/torch_pch.h"
#include "methods/psts.h"

namespace ablate {

SelectiveMae::SelectiveMae(const RunConfig& config)
    : MaskedAutoencoder(config),
      hog_mode_(config.method.hog_mode),
      sample_(config.method.hog_select == HogSelect::multinomial) {}

MaskPlan SelectiveMae::plan(const torch::Tensor& images, const torch::Tensor& tokens,
                            const torch::Tensor& psts_weights) {
  const int64_t B = images.size(0);
  auto logits = hog_selection_logits(hog_patch_scores(images, encoder_->options().patch, hog_mode_),
                                     hog_mode_);  // (B, L)
  torch::Tensor ids_keep;
  if (method_.psts) {
    auto weights = psts_weights;
    if (!weights.defined()) {  // outside training (figures): the first stage
      const auto w = psts_stage_weights(0.0, method_.psts_order, method_.psts_bounds);
      weights = torch::tensor({w[0], w[1], w[2]}, torch::kFloat32).to(images.device());
    }
    auto seed = select_by_logits(logits, n_keep_ / 2, sample_);
    ids_keep = method_.psts_mix == PstsMix::split
                   ? psts_fill_split(tokens.detach(), seed, n_keep_, weights, method_.psts_order).selected
                   : psts_fill(tokens.detach(), seed, n_keep_, psts_draw_stages(weights, B));
  } else {
    ids_keep = select_by_logits(logits, n_keep_, sample_);
  }
  MaskPlan p;
  p.split = split_from_keep(ids_keep, patches_);
  auto masked = p.split.ids_masked;  // (B, L - N_vis)
  auto rec_logits = method_.recon_select == ReconSelect::hog ? torch::gather(logits, 1, masked)
                                                  : torch::rand(masked.sizes(), logits.options());
  p.ids_rec = torch::gather(masked, 1,
                            select_by_logits(rec_logits, n_rec_, sample_ && method_.recon_select == ReconSelect::hog));
  return p;
}

}  // namespace ablate
