// Parity with the public MAE (golden case mae_tiny: facebookresearch/mae efb2a80 models_mae.py, a
// tiny MaskedAutoencoderViT (img 32, patch 8, dim 64, depth 2, 4 heads, decoder 32 x 1) on 4
// EuroSAT images): the masking from the given noise, the position tables, the encoder's per-block
// outputs and latent, the decoder embedding and prediction, the norm-pix target and loss, and the
// whole-image CLS feature. The weights come from the official training checkpoint (checkpoint.pth,
// read by methods/torch_checkpoint.h). The golden model was built with the class default
// LayerNorm eps 1e-5 (the official factory functions, which every official run uses, and ablate
// use 1e-6), so every LayerNorm here is set to 1e-5.
// Tolerances: index tensors and the mask exactly; the position tables to 1e-7 (float64 tables
// rounded to float32 on both sides); network tensors (values up to ~5) to 5e-6 absolute + 1e-5
// relative: the golden's own rerun with another summation order moved them by up to 1.7e-6.
#include <string>

#include "methods/decoder.h"
#include "methods/losses.h"
#include "methods/masking.h"
#include "pch/torch_pch.h"
#include "methods/torch_checkpoint.h"
#include "methods/vit.h"
#include "tests/support/catch.h"
#include "tests/support/golden.h"

using namespace ablate;

namespace {

constexpr double kAtol = 5e-6, kRtol = 1e-5;

struct MaeTiny {
  VisionTransformer encoder{nullptr};
  std::shared_ptr<MaeDecoderImpl> decoder;
  std::map<std::string, torch::Tensor> state;  // the official state dict
};

// The official state-dict name of one of our parameters ("encoder." / "decoder." + our name).
std::string official_name(const std::string& ours) {
  auto replace_prefix = [&](const std::string& from, const std::string& to) {
    return ours.rfind(from, 0) == 0 ? to + ours.substr(from.size()) : std::string();
  };
  for (auto [from, to] : {std::pair{"encoder.patch_embed.", "patch_embed.proj."}, {"encoder.", ""},
                          {"decoder.embed.", "decoder_embed."}, {"decoder.blocks.", "decoder_blocks."},
                          {"decoder.norm.", "decoder_norm."}, {"decoder.pred.", "decoder_pred."},
                          {"decoder.mask_token", "mask_token"}})
    if (auto name = replace_prefix(from, to); !name.empty()) return name;
  return ours;
}

MaeTiny load_mae_tiny() {
  VitOptions o;
  o.img_size = 32;
  o.patch = 8;
  o.dim = 64;
  o.depth = 2;
  o.heads = 4;
  o.mlp_hidden = 256;
  ModelConfig m;
  m.img_size = 32;
  m.patch_size = 8;
  m.decoder = DecoderKind::mae;
  m.dec_dim = 32;
  m.dec_depth = 1;
  m.dec_heads = 4;
  MaeTiny t{VisionTransformer(o), std::make_shared<MaeDecoderImpl>(o, m, torch::TensorOptions()),
            read_torch_state_dict(test::golden_dir() / "mae_tiny" / "checkpoint.pth")};
  torch::NoGradGuard no_grad;
  size_t loaded = 0;
  for (auto [prefix, module] : {std::pair<std::string, torch::nn::Module*>{"encoder.", t.encoder.get()},
                                {"decoder.", t.decoder.get()}}) {
    for (auto& p : module->named_parameters()) {
      const std::string name = official_name(prefix + p.key());
      INFO(prefix + p.key() << " <- " << name);
      REQUIRE(t.state.count(name) == 1);
      REQUIRE(t.state.at(name).sizes() == p.value().sizes());
      p.value().copy_(t.state.at(name));
      ++loaded;
    }
    for (const auto& sub : module->modules())
      if (auto ln = std::dynamic_pointer_cast<LayerNormImpl>(sub)) ln->eps = 1e-5;
    module->eval();
  }
  // Every official tensor but the two fixed position tables (checked against ours below) is used.
  CHECK(loaded + 2 == t.state.size());
  return t;
}

void check_close(const torch::Tensor& ours, const torch::Tensor& golden, const char* what,
                 double atol = kAtol, double rtol = kRtol) {
  REQUIRE(ours.sizes() == golden.sizes());
  INFO(what << ": max |ours - official| = " << (ours - golden).abs().max().item<float>());
  CHECK(torch::allclose(ours, golden, rtol, atol));
}

}  // namespace

TEST_CASE("mae_tiny: masking from the given noise", "[parity][mae]") {
  const auto in = test::golden_tensors("mae_tiny", "inputs.safetensors").tensors;
  const auto out = test::golden_tensors("mae_tiny", "outputs.safetensors").tensors;
  const MaskSplit s = masking_from_noise(in.at("noise"), in.at("mask_ratio").item<double>());
  CHECK(s.ids_keep.size(1) == 4);
  CHECK(torch::equal(torch::cat({s.ids_keep, s.ids_masked}, 1), out.at("ids_shuffle")));
  CHECK(torch::equal(s.ids_restore, out.at("ids_restore")));
  CHECK(torch::equal(ids_to_mask(s.ids_masked, 16), out.at("mask")));
}

TEST_CASE("mae_tiny: position tables, encoder blocks, decoder, norm-pix target, loss and CLS feature",
          "[parity][mae]") {
  MaeTiny t = load_mae_tiny();
  torch::NoGradGuard no_grad;
  const auto in = test::golden_tensors("mae_tiny", "inputs.safetensors").tensors;
  const auto mid = test::golden_tensors("mae_tiny", "intermediates.safetensors").tensors;
  const auto out = test::golden_tensors("mae_tiny", "outputs.safetensors").tensors;
  const torch::Tensor imgs = in.at("imgs");  // (4, 3, 32, 32)

  // Fixed 2-D sin-cos tables: the official ones carry a zero CLS row first.
  check_close(t.encoder->pos_embed, t.state.at("pos_embed").slice(1, 1), "pos_embed", 1e-7, 0.0);
  CHECK(torch::equal(t.state.at("pos_embed").slice(1, 0, 1), torch::zeros({1, 1, 64})));
  check_close(t.decoder->pos_embed, t.state.at("decoder_pos_embed"), "decoder_pos_embed", 1e-7, 0.0);

  // Encoder on the 4 visible patches of the given noise.
  const MaskSplit s = masking_from_noise(in.at("noise"), 0.75);
  check_close(t.encoder->patch_embed(imgs), mid.at("patch_embed_out"), "patch_embed_out");
  std::vector<torch::Tensor> blocks;
  const torch::Tensor latent = t.encoder->encode(t.encoder->embed(imgs), s.ids_keep, &blocks);
  REQUIRE(blocks.size() == 2);
  check_close(blocks[0], mid.at("enc_block0_out"), "enc_block0_out");
  check_close(blocks[1], mid.at("enc_block1_out"), "enc_block1_out");
  check_close(latent, out.at("latent"), "latent");

  // Decoder on the golden latent (so its own error is measured), all 16 patches in grid order.
  const torch::Tensor all = torch::arange(16).expand({4, 16}).contiguous();
  check_close(t.decoder->embed(out.at("latent")), mid.at("decoder_embed_out"), "decoder_embed_out");
  const DecoderOutput d = t.decoder->forward(out.at("latent"), {}, s.ids_restore, all);
  check_close(d.pred, out.at("pred"), "pred");
  check_close(t.decoder->pred(t.decoder->norm(mid.at("dec_block0_out").slice(1, 1))), out.at("pred"),
              "norm + pred of dec_block0_out");
  check_close(t.decoder->forward(latent, {}, s.ids_restore, all).pred, out.at("pred"), "pred end to end");

  // Norm-pix target (patchify layout (row, col, channel) inside each patch) and the loss: the mean
  // over the 12 removed patches of each sample, every sample removing as many.
  const torch::Tensor target = patch_targets(imgs, 8, all, /*norm_pix=*/true);
  check_close(target, out.at("target"), "target");
  const torch::Tensor loss =
      reconstruction_loss(gather_tokens(d.pred, s.ids_masked), gather_tokens(target, s.ids_masked)).mean();
  check_close(loss.view({1}), out.at("loss"), "loss");

  // Whole image: every patch kept in grid order.
  check_close(t.encoder->forward_encoder(imgs, {}), out.at("latent_full"), "latent_full");
  check_close(t.encoder->forward_features(imgs), out.at("cls_feature"), "cls_feature");
}
