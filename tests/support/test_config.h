// The one tiny run config the methods tests train (instead of a copy per test file): vit_micro on
// 64 x 64 images (8 x 8 patches of 8 pixels), a one-block decoder 32 wide with 2 heads, 16 images
// per step over 2 epochs with half an epoch of warm-up, a metric line every step and no periodic
// checkpoint. `method` picks the method with the settings it needs to pass validate(): CrossMAE and
// SelectiveMAE the cross-attention decoder with 25% of the patches reconstructed, SelectiveMAE 85%
// masked. A test sets what it is about on top.
#pragma once

#include <string>

#include "harness/config.h"

namespace ablate::test {

inline RunConfig tiny_config(MethodKind method = MethodKind::mae) {
  RunConfig c;
  c.model.size = "vit_micro";
  c.model.img_size = 64;
  c.model.patch_size = 8;
  c.model.dec_depth = 1;
  c.model.dec_dim = 32;
  c.model.dec_heads = 2;
  c.method.name = method;
  if (method == MethodKind::crossmae || method == MethodKind::selectivemae) {
    c.model.decoder = DecoderKind::cross;
    c.method.recon_ratio = 0.25;
  }
  if (method == MethodKind::selectivemae) c.method.mask_ratio = 0.85;
  c.train.batch = 16;
  c.train.epochs = 2;
  c.train.blr = 1e-3;
  c.train.warmup_epochs = 0.5;
  c.train.log_every = 1;
  c.train.ckpt_every = 1000;
  return c;
}

}  // namespace ablate::test
