// Foreign encoder weights in and out (see pretrained.h): file names are normalised to timm's
// VisionTransformer names, the architecture is read from the shapes, and one name table
// (encoder_slots) maps timm names onto ablate's ViT for loading and exporting alike.
#include "methods/pretrained.h"

#include "pch/torch_pch.h"

#include <cmath>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include <fmt/ranges.h>

#include "harness/check.h"
#include "harness/hash.h"
#include "harness/model_sizes.h"
#include "harness/sys_util.h"
#include "methods/safetensors.h"
#include "methods/torch_checkpoint.h"

namespace ablate {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

std::string file_sha256(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot open weights file", file.string()));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.final_hex();
}

// Names the encoder owns in timm's layout; anything else in a file is a training head or decoder.
bool in_encoder_namespace(const std::string& name) {
  for (const char* p : {"patch_embed.", "blocks.", "norm.", "cls_token", "pos_embed", "reg_token"})
    if (starts_with(name, p)) return true;
  return false;
}

// File names -> timm names: prefixes stripped, split q/k/v projections fused into attn.qkv.
std::map<std::string, torch::Tensor> normalise_names(std::map<std::string, torch::Tensor> in,
                                                     const std::filesystem::path& file) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, t] : in) {
    std::string n = name;
    for (bool stripped = true; stripped;) {
      stripped = false;
      for (const char* p : {"module.", "_orig_mod.", "encoder.", "backbone.", "model."})
        if (starts_with(n, p)) {
          n = n.substr(std::string(p).size());
          stripped = true;
        }
    }
    out[n] = t;
  }
  // Fuse q / k / v (nn.Linear each, or *_proj) into one (3D, D) qkv, as timm's Attention holds it.
  std::vector<std::string> qs;
  for (const auto& [name, t] : out)
    if (ends_with(name, ".attn.q.weight") || ends_with(name, ".attn.q_proj.weight")) qs.push_back(name);
  for (const auto& q_weight : qs) {
    const bool proj = ends_with(q_weight, "_proj.weight");
    const std::string base = q_weight.substr(0, q_weight.size() - (proj ? 13 : 8));  // "...attn."
    const std::string suffix = proj ? "_proj" : "";
    for (const char* kind : {"weight", "bias"}) {
      std::vector<torch::Tensor> parts;
      for (const char* qkv : {"q", "k", "v"}) {
        const auto it = out.find(base + qkv + suffix + "." + kind);
        if (it == out.end()) break;
        parts.push_back(it->second);
        out.erase(it);
      }
      if (parts.size() == 3) out[base + "qkv." + kind] = torch::cat(parts, 0);
      else if (!parts.empty())
        throw DataError(fmt::format("{}: {}{{q,k,v}}{}.{}: not all three present", file.string(), base, suffix, kind));
    }
  }
  // BEiT / EVA style: qkv weight with separate q and v biases and no k bias.
  std::vector<std::string> q_biases;
  for (const auto& [name, t] : out)
    if (ends_with(name, ".attn.q_bias")) q_biases.push_back(name);
  for (const auto& q_bias : q_biases) {
    const std::string base = q_bias.substr(0, q_bias.size() - 6);  // "...attn."
    const auto v = out.find(base + "v_bias");
    if (v == out.end()) continue;
    const auto q = out.at(q_bias);
    out[base + "qkv.bias"] = torch::cat({q, torch::zeros_like(q), v->second}, 0);
    out.erase(v);
    out.erase(q_bias);
  }
  return out;
}

// The architecture the shapes imply; DataError when they do not describe a ViT encoder.
VitOptions infer_options(const std::map<std::string, torch::Tensor>& t, const PretrainedOptions& po,
                         const std::filesystem::path& file) {
  const auto need = [&](const std::string& name) -> const torch::Tensor& {
    const auto it = t.find(name);
    if (it == t.end())
      throw DataError(fmt::format("{}: no '{}' (after removing prefixes): not a ViT encoder state dict", file.string(), name));
    return it->second;
  };
  VitOptions o;
  const auto& pw = need("patch_embed.proj.weight");  // (D, 3, p, p)
  if (pw.dim() != 4 || pw.size(1) != 3 || pw.size(2) != pw.size(3))
    throw DataError(fmt::format("{}: patch_embed.proj.weight {} is not a square RGB patch conv", file.string(), shape_text(pw)));
  o.dim = pw.size(0);
  o.patch = pw.size(2);
  o.depth = 0;
  for (const auto& [name, v] : t)
    if (starts_with(name, "blocks.")) o.depth = std::max<int64_t>(o.depth, std::stoll(name.substr(7)) + 1);
  o.branches = 1;
  const bool parallel = t.count("blocks.0.attns.0.norm.weight") > 0;
  if (parallel)
    while (t.count(fmt::format("blocks.0.attns.{}.norm.weight", o.branches))) ++o.branches;
  const std::string block0 = parallel ? "blocks.0.ffns.0." : "blocks.0.";
  o.mlp_hidden = need(block0 + "mlp.fc1.weight").size(0);
  o.qkv_bias = t.count(parallel ? "blocks.0.attns.0.attn.qkv.bias" : "blocks.0.attn.qkv.bias") > 0;
  const auto& pos = need("pos_embed");  // (1, [1 +] L, D)
  const auto grid = static_cast<int64_t>(std::lround(std::sqrt(double(pos.size(1)))));
  const auto grid_cls = static_cast<int64_t>(std::lround(std::sqrt(double(pos.size(1) - 1))));
  o.cls_pos_embed = grid * grid != pos.size(1);
  if (o.cls_pos_embed && grid_cls * grid_cls != pos.size(1) - 1)
    throw DataError(fmt::format("{}: pos_embed {} is not a square grid with or without a CLS row", file.string(), shape_text(pos)));
  o.img_size = (o.cls_pos_embed ? grid_cls : grid) * o.patch;
  o.norm_eps = po.norm_eps;
  o.drop_path = 0.0;
  o.heads = po.heads;
  if (o.heads == 0)
    for (const auto& s : vit_sizes())
      if (s.dim == o.dim && s.depth == o.depth && s.branches == o.branches) o.heads = s.heads;
  if (o.heads == 0 && o.dim % 64 == 0) o.heads = o.dim / 64;
  if (o.heads == 0 || o.dim % o.heads != 0)
    throw DataError(fmt::format("{}: cannot tell the attention heads of width {} (give them: heads)", file.string(), o.dim));
  return o;
}

// timm name -> the ViT tensor it is (parameters and the pos_embed buffer, by reference).
std::vector<std::pair<std::string, torch::Tensor>> encoder_slots(VisionTransformerImpl& vit) {
  std::vector<std::pair<std::string, torch::Tensor>> s{{"patch_embed.proj.weight", vit.patch_embed->weight},
                                                       {"patch_embed.proj.bias", vit.patch_embed->bias},
                                                       {"cls_token", vit.cls_token},
                                                       {"pos_embed", vit.pos_embed}};
  const auto linear = [&](const std::string& name, const Linear& l) {
    s.emplace_back(name + ".weight", l->weight);
    if (l->bias.defined()) s.emplace_back(name + ".bias", l->bias);
  };
  const auto norm = [&](const std::string& name, const LayerNorm& n) {
    s.emplace_back(name + ".weight", n->weight);
    s.emplace_back(name + ".bias", n->bias);
  };
  for (size_t i = 0; i < vit.blocks.size(); ++i) {
    const auto& b = vit.blocks[i];
    const bool parallel = b->attn.size() > 1;
    for (size_t k = 0; k < b->attn.size(); ++k) {
      const auto attn = parallel ? fmt::format("blocks.{}.attns.{}.", i, k) : fmt::format("blocks.{}.", i);
      const auto ffn = parallel ? fmt::format("blocks.{}.ffns.{}.", i, k) : fmt::format("blocks.{}.", i);
      norm(attn + (parallel ? "norm" : "norm1"), b->norm1[k]);
      linear(attn + "attn.qkv", b->attn[k]->qkv);
      linear(attn + "attn.proj", b->attn[k]->proj);
      norm(ffn + (parallel ? "norm" : "norm2"), b->norm2[k]);
      linear(ffn + "mlp.fc1", b->mlp[k]->fc1);
      linear(ffn + "mlp.fc2", b->mlp[k]->fc2);
    }
  }
  norm("norm", vit.norm);
  return s;
}

// Copies the file's tensors into the ViT; DataError listing every missing / unexpected / mis-shaped key.
void copy_into(VisionTransformerImpl& vit, const std::map<std::string, torch::Tensor>& file_tensors,
               const std::filesystem::path& file, std::vector<std::string>& ignored) {
  std::set<std::string> used;
  std::vector<std::string> missing, mismatched, unexpected;
  torch::NoGradGuard no_grad;
  for (auto& [name, slot] : encoder_slots(vit)) {
    const auto it = file_tensors.find(name);
    if (it == file_tensors.end()) {
      missing.push_back(name + " " + shape_text(slot));
      continue;
    }
    used.insert(name);
    if (it->second.sizes() != slot.sizes()) {
      mismatched.push_back(fmt::format("{} {} in the file, {} in the model", name, shape_text(it->second), shape_text(slot)));
      continue;
    }
    slot.copy_(it->second.to(slot.dtype()));
  }
  for (const auto& [name, t] : file_tensors) {
    if (used.count(name)) continue;
    (in_encoder_namespace(name) ? unexpected : ignored).push_back(name + " " + shape_text(t));
  }
  if (missing.empty() && mismatched.empty() && unexpected.empty()) return;
  std::string msg = fmt::format("{}: the weights do not fit a ViT encoder (dim {}, depth {}, branches {}, patch {}, "
                                "img {})", file.string(), vit.options().dim, vit.options().depth,
                                vit.options().branches, vit.options().patch, vit.options().img_size);
  if (!missing.empty()) msg += fmt::format("\n  missing: {}", fmt::join(missing, "; "));
  if (!unexpected.empty()) msg += fmt::format("\n  unexpected: {}", fmt::join(unexpected, "; "));
  if (!mismatched.empty()) msg += fmt::format("\n  shape mismatch: {}", fmt::join(mismatched, "; "));
  throw DataError(msg);
}

}  // namespace

PretrainedEncoder load_pretrained_encoder(const std::filesystem::path& file, const PretrainedOptions& options) {
  if (!std::filesystem::is_regular_file(file))
    throw DataError(fmt::format("{}: weights file not found", file.string()));
  const bool safetensors = file.extension() == ".safetensors";
  auto tensors = normalise_names(safetensors ? read_safetensors(file).tensors : read_torch_state_dict(file), file);
  PretrainedEncoder out;
  out.sha256 = file_sha256(file);
  VitOptions arch = infer_options(tensors, options, file);
  if (options.architecture) {
    const bool cls_pos_embed = arch.cls_pos_embed;
    arch = *options.architecture;
    arch.cls_pos_embed = cls_pos_embed;
  }
  out.vit = VisionTransformer(arch);
  copy_into(*out.vit, tensors, file, out.ignored);
  out.vit->eval();
  return out;
}

std::map<std::string, torch::Tensor> timm_encoder_tensors(VisionTransformerImpl& vit) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [name, t] : encoder_slots(vit)) out[name] = t.detach().to(torch::kCPU).clone();
  if (!vit.options().cls_pos_embed)  // timm adds pos_embed to the CLS token too: a zero row keeps it unchanged
    out["pos_embed"] = torch::cat({torch::zeros({1, 1, vit.options().dim}, out["pos_embed"].options()), out["pos_embed"]}, 1);
  return out;
}

std::string timm_architecture(const VitOptions& o) {
  if (o.branches > 2)
    throw ConfigError("<command line>", "--format timm",
                      fmt::format("an encoder with {} parallel branches has no timm architecture", o.branches),
                      "timm's ParallelThingsBlock has two branches; export --format pth or safetensors instead");
  if (o.branches == 2) return "vit_small_patch16_18x2_224";
  struct Named {
    int64_t dim, heads;
    const char* name;
  };
  for (const Named& n : {Named{192, 3, "vit_tiny_patch16_224"}, Named{384, 6, "vit_small_patch16_224"},
                         Named{768, 12, "vit_base_patch16_224"}, Named{1024, 16, "vit_large_patch16_224"},
                         Named{1280, 16, "vit_huge_patch14_224"}, Named{1408, 16, "vit_giant_patch14_224"}})
    if (n.dim == o.dim && n.heads == o.heads) return n.name;
  return "vit_base_patch16_224";  // model_args override every size field
}

void export_timm(VisionTransformerImpl& vit, const std::filesystem::path& dir, const std::array<double, 3>& mean,
                 const std::array<double, 3>& std) {
  const VitOptions& o = vit.options();
  const std::string arch = timm_architecture(o);
  if (o.norm_eps != 1e-6)
    throw ConfigError("<command line>", "--format timm",
                      fmt::format("LayerNorm eps {} cannot be expressed in timm's config (its ViT uses 1e-6)", o.norm_eps),
                      "export --format pth instead");
  nlohmann::json model_args{{"img_size", o.img_size},
                            {"patch_size", o.patch},
                            {"embed_dim", o.dim},
                            {"depth", o.depth},
                            {"num_heads", o.heads},
                            {"mlp_ratio", double(o.mlp_hidden) / double(o.dim)},
                            {"qkv_bias", o.qkv_bias},
                            {"num_classes", 0},
                            {"global_pool", "token"}};
  if (o.branches == 2) model_args["init_values"] = nullptr;  // the 18x2 model has layer scale; ours has none
  const nlohmann::json config{
      {"architecture", arch},
      {"num_classes", 0},
      {"num_features", o.dim},
      {"global_pool", "token"},
      {"model_args", model_args},
      {"pretrained_cfg",
       {{"input_size", {3, o.img_size, o.img_size}},
        {"fixed_input_size", true},
        {"interpolation", "bicubic"},
        {"crop_pct", 1.0},
        {"crop_mode", "center"},
        {"mean", mean},
        {"std", std},
        {"num_classes", 0},
        {"pool_size", nullptr},
        {"first_conv", "patch_embed.proj"},
        {"classifier", "head"}}}};
  std::filesystem::create_directories(dir);
  write_safetensors(dir / "model.safetensors", timm_encoder_tensors(vit));
  write_file_atomically(dir / "config.json", config.dump(2) + "\n");
}

void export_mae_pth(VisionTransformerImpl& vit, const std::filesystem::path& file) {
  write_torch_state_dict(file, timm_encoder_tensors(vit), "model");
}

}  // namespace ablate
