// Decoders: parameter counts against harness decoder_params() (MAE, CrossMAE with self-attention
// and feature mapping; ViT-B on the meta device), and the contract that both answer for exactly the
// requested patches: decoding a subset equals the same rows of decoding every patch.
#include "methods/decoder.h"

#include "pch/torch_pch.h"

#include "harness/model_sizes.h"
#include "methods/masking.h"
#include "tests/support/catch.h"
#include "tests/support/modules.h"

using namespace ablate;

namespace {

ModelConfig micro(DecoderKind decoder) {
  ModelConfig m;
  m.size = "vit_micro";
  m.img_size = 32;
  m.patch_size = 8;
  m.decoder = decoder;
  m.dec_depth = 2;
  m.dec_dim = 32;
  m.dec_heads = 4;
  return m;
}

}  // namespace

TEST_CASE("decoder parameter counts equal decoder_params()", "[decoder]") {
  const auto meta = torch::TensorOptions().device(torch::kMeta);
  for (const char* size : {"vit_micro", "vit_b"}) {
    for (int variant = 0; variant < 4; ++variant) {
      ModelConfig m;
      m.size = size;
      m.img_size = 224;
      m.patch_size = 16;
      m.decoder = variant == 0 ? DecoderKind::mae : DecoderKind::cross;
      m.dec_self_attn = variant == 2 || variant == 3;
      m.dec_feature_map = variant == 3;
      VisionTransformer enc(VitOptions::from(m), meta);
      auto dec = make_decoder(m, enc, meta);
      INFO(size << " variant " << variant);
      CHECK(numel_of(*dec) == decoder_params(m));
    }
  }
}

TEST_CASE("decoders answer for exactly the requested patches", "[decoder]") {
  torch::manual_seed(0);
  for (int variant = 0; variant < 3; ++variant) {
    ModelConfig m = micro(variant == 0 ? DecoderKind::mae : DecoderKind::cross);
    m.dec_feature_map = variant == 2;
    VisionTransformer enc(VitOptions::from(m));
    auto dec = make_decoder(m, enc);
    dec->eval();
    auto split = random_masking(2, 16, 0.75, torch::kCPU);
    std::vector<torch::Tensor> blocks;
    auto latent = enc->forward_encoder(torch::randn({2, 3, 32, 32}), split.ids_keep,
                                       dec->wants_block_outputs() ? &blocks : nullptr);
    auto all = torch::arange(16).expand({2, 16}).contiguous();
    auto full = dec->forward(latent, blocks, split.ids_restore, all);
    REQUIRE(full.pred.sizes() == torch::IntArrayRef({2, 16, 8 * 8 * 3}));
    REQUIRE(full.hidden.sizes() == torch::IntArrayRef({2, 16, 32}));
    auto rec = split.ids_masked.slice(1, 0, 5);
    auto part = dec->forward(latent, blocks, split.ids_restore, rec);
    INFO("variant " << variant);
    CHECK(torch::allclose(part.pred, gather_tokens(full.pred, rec), 1e-4, 1e-5));
  }
}
