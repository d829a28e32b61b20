// Bench step configurations (see bench_preset.h).
#include "harness/bench_preset.h"

namespace ablate {

RunConfig bench_preset(MethodKind method, const std::string& model, int img_size, int batch) {
  RunConfig c;
  c.model.size = model;
  c.model.img_size = img_size;
  c.model.patch_size = 16;
  c.model.dec_dim = 512;
  c.model.dec_heads = 16;
  c.method.name = method;
  c.train.batch = batch;
  if (method == MethodKind::mae) {
    c.method.mask_ratio = 0.75;
    c.model.decoder = DecoderKind::mae;
    c.model.dec_depth = 8;
  } else {  // selectivemae, and the other methods in its (CrossMAE-decoder) shape
    c.method.mask_ratio = 0.85;
    c.method.recon_ratio = 0.25;
    c.model.decoder = DecoderKind::cross;
    c.model.dec_depth = 12;
  }
  return c;
}

}  // namespace ablate
