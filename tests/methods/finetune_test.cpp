// Fine-tuning: MAE's layer ids for lr decay by hand, and a tiny MLP "encoder" fine-tuned on a small
// colour-classification problem ends far above chance; stochastic depth is the fine-tuning rate.
#include "methods/finetune.h"

#include "pch/torch_pch.h"
#include "methods/vit.h"

#include "tests/support/catch.h"

using namespace ablate;

namespace {

// A ViT-shaped MLP: patch_embed, then blocks.0 / blocks.1, then norm, so lr decay sees 2 blocks.
struct TinyEncoderImpl : torch::nn::Module {
  torch::nn::Linear patch_embed{nullptr};
  torch::nn::Sequential blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  TinyEncoderImpl(int64_t in, int64_t dim) {
    patch_embed = register_module("patch_embed", torch::nn::Linear(in, dim));
    blocks = register_module(
        "blocks", torch::nn::Sequential(torch::nn::Linear(dim, dim), torch::nn::Linear(dim, dim)));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  }
  torch::Tensor forward(const torch::Tensor& x) {  // (B, 3, M, M) -> (B, D)
    torch::Tensor h = torch::gelu(patch_embed->forward(x.flatten(1)));
    for (auto& block : *blocks) h = h + torch::gelu(block.forward(h));
    return norm->forward(h);
  }
};
TORCH_MODULE(TinyEncoder);

// Class c: channel c bright (mean 150), the others dark (mean 90), noise +-60: a colour task that
// crops and flips do not change.
LabelledImages colour_task(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor labels = torch::arange(n, torch::kInt64).remainder(3);           // (N)
  const torch::Tensor base = torch::one_hot(labels, 3).to(torch::kFloat32) * 60 + 90;  // (N, 3)
  const torch::Tensor noise = (torch::rand({n, 3, 8, 8}, gen) - 0.5) * 120;
  const torch::Tensor images = (base.view({n, 3, 1, 1}) + noise).clamp(0, 255).to(torch::kUInt8);
  return {images, labels};
}

}  // namespace

TEST_CASE("layer ids for lr decay follow MAE's get_layer_id_for_vit", "[finetune]") {
  const int64_t L = 3;  // 2 blocks
  CHECK(layer_id_for_lr_decay("cls_token", L) == 0);
  CHECK(layer_id_for_lr_decay("pos_embed", L) == 0);
  CHECK(layer_id_for_lr_decay("patch_embed.proj.weight", L) == 0);
  CHECK(layer_id_for_lr_decay("blocks.0.attn.qkv.weight", L) == 1);
  CHECK(layer_id_for_lr_decay("encoder.blocks.1.mlp.fc1.bias", L) == 2);
  CHECK(layer_id_for_lr_decay("norm.weight", L) == 3);
  CHECK(layer_id_for_lr_decay("head.weight", L) == 3);
  CHECK(layer_id_for_lr_decay("blocks_norm.weight", L) == 3);
}

namespace {

FinetuneResult finetune_tiny(torch::Device device) {
  torch::manual_seed(0);  // the encoder's own initialisation
  TinyEncoder encoder(3 * 8 * 8, 32);
  const torch::Tensor patch_before = encoder->patch_embed->weight.clone();
  const EmbedFn features = [&](const torch::Tensor& x) { return encoder->forward(x); };
  EvalConfig cfg;
  cfg.ft_epochs = 6;
  cfg.ft_lr = 2e-2;
  FinetuneOptions opt;
  opt.input_size = 8;
  opt.batch = 32;
  const FinetuneResult r = finetune(encoder.ptr(), features, 32, 3, colour_task(240, 1),
                                    colour_task(90, 2), cfg, opt, device, 3);
  // Even the lowest layer (lr scale 0.75^3) moved: the encoder is trained end to end.
  CHECK(!torch::equal(encoder->patch_embed->weight.cpu(), patch_before));
  return r;
}

}  // namespace

TEST_CASE("fine-tuning replaces the pre-training stochastic depth by eval.ft_drop_path", "[finetune]") {
  VitOptions o;
  o.img_size = 16;
  o.patch = 8;
  o.dim = 32;
  o.heads = 2;
  o.mlp_hidden = 64;
  o.depth = 5;
  o.drop_path = 0.3;  // whatever pre-training used
  VisionTransformer enc(o);
  set_finetune_drop_path(*enc, 0.1);
  // timm / MAE: torch.linspace(0, drop_path, depth).
  for (int64_t i = 0; i < 5; ++i) CHECK(enc->blocks[i]->drop_path_rate == Approx(0.1 * double(i) / 4.0));
  CHECK(EvalConfig{}.ft_drop_path == 0.1);  // MAE main_finetune's default
  o.drop_path = 0.0;
  CHECK(VisionTransformer(o)->blocks[4]->drop_path_rate == 0.0);  // pre-training: MAE has none
}

TEST_CASE("fine-tuning a tiny encoder learns a separable task", "[finetune]") {
  const FinetuneResult r = finetune_tiny(torch::kCPU);
  CHECK(r.val.top1 > 0.8);  // chance is 1/3
  REQUIRE(r.epoch_loss.size() == 6);
  CHECK(r.epoch_loss.back() < r.epoch_loss.front());
}

TEST_CASE("fine-tuning runs on CUDA under bf16 autocast", "[finetune][gpu]") {
  if (!torch::cuda::is_available()) ABLATE_SKIP("no CUDA device");
  const FinetuneResult r = finetune_tiny(torch::kCUDA);
  CHECK(r.val.top1 > 0.8);
}
