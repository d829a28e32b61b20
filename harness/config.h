// The resolved configuration of one run: plain aggregate structs, one per section of an experiment
// file (model, method, data, train, eval, resources). After loading and validation
// (harness/config_io.h) a RunConfig is passed by const& everywhere; there are no globals.
//
// Every field is described once, in the visit_fields() overloads below: key, meaning, unit, an
// example, and its allowed range. A field with a fixed set of values is an enum whose words are
// listed once, by choice_names() beside it. The YAML reader, the JSON writer (canonical form,
// hashed into the run id), the validator and `ablate plan --describe` are all generic over these
// descriptions, so a field is added in exactly one place.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "harness/choice.h"

namespace ablate {

// ---- choice fields: enums read and written as words (harness/choice.h) ----
// Choices are parsed once, at load (config_io.h); the code then compares enumerators, and stored
// configs and run ids keep the words (the bytes they had when these fields were strings).

enum class DecoderKind { mae, cross };  // MAE self-attention + mask tokens | CrossMAE cross-attention
constexpr std::array<const char*, 2> choice_names(DecoderKind) { return {"mae", "cross"}; }

enum class MethodKind { mae, crossmae, selectivemae, crossscale };
constexpr std::array<const char*, 4> choice_names(MethodKind) {
  return {"mae", "crossmae", "selectivemae", "crossscale"};
}

// SelectiveMAE's patch score: the L2 energy of HOG (paper) | the mean of z-scores (public code).
enum class HogMode { paper, official };
constexpr std::array<const char*, 2> choice_names(HogMode) { return {"paper", "official"}; }

enum class HogSelect { topk, multinomial };  // rank the scores | sample without replacement
constexpr std::array<const char*, 2> choice_names(HogSelect) { return {"topk", "multinomial"}; }

enum class ReconSelect { hog, random };  // which masked patches are reconstructed
constexpr std::array<const char*, 2> choice_names(ReconSelect) { return {"hog", "random"}; }

enum class PstsStage { near, far, random };  // PSTS stages (methods/psts.h)
constexpr std::array<const char*, 3> choice_names(PstsStage) { return {"near", "far", "random"}; }

enum class PstsMix { sample, split };  // how PSTS blends two stages (methods/psts.h)
constexpr std::array<const char*, 2> choice_names(PstsMix) { return {"sample", "split"}; }

enum class LrRule { m_over_r, r_over_m, none };  // lr multiplier of partial reconstruction
constexpr std::array<const char*, 3> choice_names(LrRule) { return {"m_over_r", "r_over_m", "none"}; }

enum class Pool { cls, mean };  // encoder feature of Cross-Scale MAE's L_cc
constexpr std::array<const char*, 2> choice_names(Pool) { return {"cls", "mean"}; }

enum class CcDenominator { negatives, all };  // NT-Xent: -log(pos / sum neg) | SimCLR pos + neg
constexpr std::array<const char*, 2> choice_names(CcDenominator) { return {"negatives", "all"}; }

enum class CpTokens { all, masked };  // decoder tokens Cross-Scale MAE's L_cp predicts
constexpr std::array<const char*, 2> choice_names(CpTokens) { return {"all", "masked"}; }

enum class CpHead { bn, gelu };  // L_cp predictor: Linear-BatchNorm1d(L)-ReLU-Linear | GELU MLP
constexpr std::array<const char*, 2> choice_names(CpHead) { return {"bn", "gelu"}; }

enum class ReReduction { sum, mean };  // L_re over Cross-Scale MAE's two views
constexpr std::array<const char*, 2> choice_names(ReReduction) { return {"sum", "mean"}; }

enum class ViewMasks { independent, shared };  // masks of Cross-Scale MAE's two views
constexpr std::array<const char*, 2> choice_names(ViewMasks) { return {"independent", "shared"}; }

enum class PretrainSplit { train, all };  // which part of the dataset pre-trains
constexpr std::array<const char*, 2> choice_names(PretrainSplit) { return {"train", "all"}; }

// "auto": bf16 autocast on CUDA, fp32 on the CPU.
enum class Precision { automatic, fp32, bf16 };
constexpr std::array<const char*, 3> choice_names(Precision) { return {"auto", "fp32", "bf16"}; }

enum class Protocol { knn, linprobe, finetune };  // evaluation protocols (harness/eval_task.h)
constexpr std::array<const char*, 3> choice_names(Protocol) { return {"knn", "linprobe", "finetune"}; }

// Reduced KNN scales: encode the area-downsampled image at its size (Scale-MAE) | upsample it back.
enum class KnnResize { encode, upsample };
constexpr std::array<const char*, 2> choice_names(KnnResize) { return {"encode", "upsample"}; }

enum class KnnNorm { imagenet, dataset };  // KNN input statistics
constexpr std::array<const char*, 2> choice_names(KnnNorm) { return {"imagenet", "dataset"}; }

// Constraint and documentation of one config field.
struct FieldSpec {
  const char* doc = "";  // meaning, unit, example
  double min = -std::numeric_limits<double>::infinity();  // numeric lower bound
  double max = std::numeric_limits<double>::infinity();   // numeric upper bound
  bool min_open = false;  // true: value must be > min (not >=)
  bool max_open = false;  // true: value must be < max
  // Allowed words of a string field; empty = any. Choice (enum) fields take theirs from
  // choice_names(), filled in by config_io's field walk.
  std::vector<std::string> choices = {};
  // Fields added after results were first recorded: at their default value they are left out of
  // the run id (config_hash), so every run recorded before the field existed keeps its id.
  bool id_omits_default = false;
};

struct ModelConfig {
  std::string size = "vit_tiny";  // named ViT size (harness/model_sizes.h), e.g. "vit_b"
  int img_size = 64;              // input side in pixels, e.g. 224
  int patch_size = 8;             // patch side in pixels (img_size must be a multiple), e.g. 16
  DecoderKind decoder = DecoderKind::mae;
  int dec_depth = 8;              // decoder blocks, e.g. 8
  int dec_dim = 512;              // decoder width, e.g. 512
  int dec_heads = 16;             // decoder attention heads, e.g. 16
  bool dec_self_attn = false;     // CrossMAE: add self-attention among queries
  bool dec_feature_map = false;   // CrossMAE: learned mix of all encoder block outputs per block
  bool qkv_bias = true;           // bias in the qkv projection (off in the parallel-scaled paper)
  bool gsd_pos = false;           // Scale-MAE GSD-scaled position encoding
  double drop_path = 0.0;         // stochastic depth of the pre-training encoder (MAE: none)
};

struct MethodConfig {
  MethodKind name = MethodKind::mae;
  double mask_ratio = 0.75;      // fraction of patches hidden from the encoder, e.g. 0.85
  double recon_ratio = 0.0;      // fraction of ALL patches reconstructed; 0 = all masked ones
  bool norm_pix_loss = true;     // MSE on per-patch normalised pixels (eps 1e-6)
  // SelectiveMAE
  HogMode hog_mode = HogMode::paper;
  HogSelect hog_select = HogSelect::topk;  // hog_mode official needs multinomial, as the public code
  ReconSelect recon_select = ReconSelect::hog;
  bool psts = false;                    // progressive semantic token selection for visible set
  std::vector<PstsStage> psts_order = {PstsStage::near, PstsStage::far, PstsStage::random};  // a permutation
  std::vector<double> psts_bounds = {0.35, 0.375, 0.725, 0.75};  // fractions of training: stage
                                       // 1 until b0, blend to b1, stage 2 until b2, blend to b3
  PstsMix psts_mix = PstsMix::sample;   // blends: each sample one stage, drawn by the blend weights
                                        // | split (public code: every sample splits its picks)
  LrRule lr_rule = LrRule::none;        // lr multiplier: m_over_r (paper) | r_over_m | none
  bool infobatch = false;               // InfoBatch data pruning (public SelectiveMAE code)
  double infobatch_prune = 0.5;         // fraction of below-mean-loss samples dropped per epoch
  double infobatch_stop = 0.875;        // pruning stops at epoch floor(stop * epochs)
  // Cross-Scale MAE
  double scale_min = 0.2;         // second view: random resized crop area fraction, lower
  double scale_max = 0.8;         // ... upper (paper 0.2-0.8, public code 0.25-0.75)
  bool shared_crop = false;       // one crop box per batch (public code) instead of per image
  bool multiscale = true;         // use the second (low-scale) view at all
  bool loss_re = true;            // reconstruction loss on both views
  bool loss_cc = true;            // encoder cross-consistency (NT-Xent / cosine)
  bool loss_cp = true;            // decoder cross-prediction
  bool enc_negatives = true;      // L_cc with negatives (NT-Xent) or without (cosine, BYOL-style)
  bool dec_negatives = false;     // L_cp with negatives (InfoNCE) or MSE on positives only
  double temperature = 0.1;       // NT-Xent / InfoNCE temperature, e.g. 0.1
  Pool pool = Pool::cls;          // encoder feature for L_cc
  bool proj_head = true;          // MLP projection head before L_cc
  double w_re = 1.0, w_cc = 1.0, w_cp = 1.0;  // loss weights
  // Cross-Scale MAE, where the public code (aicip/Cross-Scale-MAE f991ab7) fixes what the paper
  // leaves open; the defaults are the public code's (README "official code differs" table).
  CcDenominator cc_denominator = CcDenominator::negatives;  // public code: -log(pos / sum neg)
  bool cs_final_norm = false;        // encoder's final norm before L_cc and the decoder (public: off)
  CpTokens cp_tokens = CpTokens::all;                 // public code: all L decoder tokens
  CpHead cp_head = CpHead::bn;                        // public code: BatchNorm1d(L) predictor
  ReReduction re_reduction = ReReduction::sum;        // public code: the views' L_re summed
  ViewMasks view_masks = ViewMasks::independent;      // public code: one mask per view
  bool square_crop = false;          // second view square (true) or aspect 3/4..4/3 (public)
};

struct DataConfig {
  std::string dataset = "eurosat";    // registry name (datasets/registry.h), e.g. "ucmerced"
  std::string root = "../shared/data";  // data root; the dataset lives in root/<folder>
  std::string shards = "";            // packed shard dir; "" = the cache of root/<folder> (datasets/shard_cache.h)
  int max_images = 0;                 // cap on pre-training images (0 = all), e.g. 2048
  PretrainSplit split = PretrainSplit::train;  // which split pre-trains
  double train_fraction = 0.8;        // train part of the split protocol, e.g. 0.8
  double crop_min = 0.2;              // random resized crop area fraction, lower
  double crop_max = 1.0;              // ... upper
  bool hflip = true;                  // random horizontal flip
  int workers = 2;                    // loader reader threads
  bool skip_corrupt = false;          // skip unreadable images (counted) instead of failing
};

struct TrainConfig {
  int epochs = 1;                  // passes over the pre-training set, e.g. 800
  int batch = 64;                  // global batch size, e.g. 4096
  double blr = 1.5e-4;             // base lr; lr = blr * batch / 256 * rule
  double lr = 0.0;                 // absolute lr; 0 = derive from blr
  double min_lr = 0.0;             // floor of the cosine schedule
  double warmup_epochs = 0.0;      // linear warm-up length in epochs, e.g. 40
  double weight_decay = 0.05;      // AdamW decoupled weight decay
  double beta1 = 0.9, beta2 = 0.95;  // AdamW betas
  double clip_grad = 0.0;          // max global grad norm; 0 = off
  Precision precision = Precision::automatic;  // auto: bf16 on CUDA, fp32 on CPU
  int max_steps = 0;               // stop after this many steps (0 = epochs decide)
  int ckpt_every = 200;            // checkpoint interval in steps (and always at the end)
  int log_every = 10;              // per-step metric interval in steps
  double diverge_factor = 20.0;    // grad-norm spike over running median that means divergence
  bool cuda_graph = true;          // capture the train step as a CUDA graph (CUDA only)
};

struct EvalConfig {
  std::vector<Protocol> protocols = {Protocol::knn};  // evaluations after pre-training
  std::string dataset = "eurosat";               // evaluation dataset (registry name)
  std::vector<double> scales = {1.0};            // KNN input scales, e.g. [0.125,0.25,0.5,1]
  int knn_k = 20;                                // neighbours
  double knn_t = 0.07;                           // vote temperature: weight = exp(sim / t)
  int max_train = 0;                             // cap on eval train images (0 = all)
  int max_val = 0;                               // cap on eval val images (0 = all)
  int probe_epochs = 20;                         // linear probe epochs
  double probe_lr = 0.1;                         // linear probe lr (SGD, batch 256 scaled)
  int ft_epochs = 10;                            // fine-tuning epochs
  double ft_lr = 5e-4;                           // fine-tuning base lr
  double ft_drop_path = 0.1;                     // fine-tuning stochastic depth (MAE: 0.1)
  double ft_train_ratio = 0.0;                   // fine-tune train ratio (0 = dataset default)
  bool random_init = false;                      // evaluate the untrained encoder (baseline row)
  // Multi-scale KNN (Scale-MAE eval/knn.py): encode the area-downsampled image at its reduced
  // size (fewer tokens) | upsample it back to model.img_size first (ablate before issue 14).
  KnnResize knn_resize = KnnResize::encode;
  bool knn_gsd = false;                // Scale-MAE --eval_gsd: positions scaled by img_size / size
  KnnNorm knn_norm = KnnNorm::imagenet;  // KNN input statistics (Scale-MAE: dataset)
};

struct ResourcesConfig {
  int gpus = 1;              // GPUs per run (data-parallel ranks), e.g. 8; 0 = the fewest that fit
                             // gpu_mem_gb by the memory estimate (harness/memory_estimate.h)
  double mem_gb = 0.0;       // peak GPU memory per rank in GiB, overriding the estimate (0 = estimate)
  double gpu_mem_gb = 79.0;  // memory of one GPU in GiB assumed for gpus: 0, e.g. 79 (H100 80GB)
};

struct RunConfig {
  int seed = 0;                // seed of every RNG the run owns
  ModelConfig model;
  MethodConfig method;
  DataConfig data;
  TrainConfig train;
  EvalConfig eval;
  ResourcesConfig resources;
};

// First epoch InfoBatch no longer prunes: floor(method.infobatch_stop * train.epochs), so at least
// the last (1 - stop) of the epochs see every sample. The 1e-9 keeps products such as 0.7 * 10 at 7
// where floating point lands just below. Epoch 0 only scores samples: epochs 1 .. stop - 1 prune.
inline int infobatch_stop_epoch(const RunConfig& c) {
  return static_cast<int>(std::floor(c.method.infobatch_stop * c.train.epochs + 1e-9));
}

// ---- field descriptions: one visit_fields per section; V is called as v(key, field, spec) ----

template <class V>
void visit_fields(ModelConfig& c, V&& v) {
  v("size", c.size, FieldSpec{.doc = "named ViT size, e.g. vit_b (see `ablate models`)"});
  v("img_size", c.img_size, FieldSpec{.doc = "input side in pixels, e.g. 224", .min = 8, .max = 4096});
  v("patch_size", c.patch_size, FieldSpec{.doc = "patch side in pixels, e.g. 16", .min = 1, .max = 64});
  v("decoder", c.decoder, FieldSpec{.doc = "decoder type"});
  v("dec_depth", c.dec_depth, FieldSpec{.doc = "decoder blocks, e.g. 8", .min = 1, .max = 64});
  v("dec_dim", c.dec_dim, FieldSpec{.doc = "decoder width, e.g. 512", .min = 8, .max = 8192});
  v("dec_heads", c.dec_heads, FieldSpec{.doc = "decoder heads, e.g. 16", .min = 1, .max = 128});
  v("dec_self_attn", c.dec_self_attn, FieldSpec{.doc = "CrossMAE: self-attention among queries"});
  v("dec_feature_map", c.dec_feature_map, FieldSpec{.doc = "CrossMAE: per-block encoder feature mix"});
  v("qkv_bias", c.qkv_bias, FieldSpec{.doc = "bias in qkv projections"});
  v("gsd_pos", c.gsd_pos, FieldSpec{.doc = "Scale-MAE GSD position encoding"});
  v("drop_path", c.drop_path, FieldSpec{.doc = "stochastic depth of the pre-training encoder (MAE: 0; fine-tuning: eval.ft_drop_path)", .min = 0, .max = 1, .max_open = true});
}

template <class V>
void visit_fields(MethodConfig& c, V&& v) {
  v("name", c.name, FieldSpec{.doc = "method"});
  v("mask_ratio", c.mask_ratio, FieldSpec{.doc = "fraction of patches masked, e.g. 0.75", .min = 0, .max = 1, .min_open = true, .max_open = true});
  v("recon_ratio", c.recon_ratio, FieldSpec{.doc = "fraction of all patches reconstructed (0 = all masked), e.g. 0.25", .min = 0, .max = 1});
  v("norm_pix_loss", c.norm_pix_loss, FieldSpec{.doc = "per-patch normalised pixel targets"});
  v("hog_mode", c.hog_mode, FieldSpec{.doc = "HOG patch score"});
  v("hog_select", c.hog_select, FieldSpec{.doc = "HOG-based selection rule (hog_mode official: multinomial)"});
  v("recon_select", c.recon_select, FieldSpec{.doc = "which masked patches are reconstructed"});
  v("psts", c.psts, FieldSpec{.doc = "progressive semantic token selection"});
  v("psts_order", c.psts_order, FieldSpec{.doc = "PSTS stage order, a permutation of near/far/random"});
  v("psts_bounds", c.psts_bounds, FieldSpec{.doc = "4 increasing fractions of training", .min = 0, .max = 1});
  v("psts_mix", c.psts_mix, FieldSpec{.doc = "PSTS blends: each sample one stage (sample) or split counts per sample (split, public code)", .id_omits_default = true});
  v("lr_rule", c.lr_rule, FieldSpec{.doc = "lr multiplier rule"});
  v("infobatch", c.infobatch, FieldSpec{.doc = "InfoBatch data pruning"});
  v("infobatch_prune", c.infobatch_prune, FieldSpec{.doc = "fraction of well-learned samples dropped", .min = 0, .max = 1, .max_open = true});
  v("infobatch_stop", c.infobatch_stop, FieldSpec{.doc = "pruning stops at epoch floor(stop * epochs)", .min = 0, .max = 1});
  v("scale_min", c.scale_min, FieldSpec{.doc = "second-view crop area fraction, lower", .min = 0, .max = 1, .min_open = true});
  v("scale_max", c.scale_max, FieldSpec{.doc = "second-view crop area fraction, upper", .min = 0, .max = 1, .min_open = true});
  v("shared_crop", c.shared_crop, FieldSpec{.doc = "one crop box per batch"});
  v("multiscale", c.multiscale, FieldSpec{.doc = "use the low-scale second view"});
  v("loss_re", c.loss_re, FieldSpec{.doc = "reconstruction loss"});
  v("loss_cc", c.loss_cc, FieldSpec{.doc = "encoder cross-consistency loss"});
  v("loss_cp", c.loss_cp, FieldSpec{.doc = "decoder cross-prediction loss"});
  v("enc_negatives", c.enc_negatives, FieldSpec{.doc = "negatives in the encoder loss"});
  v("dec_negatives", c.dec_negatives, FieldSpec{.doc = "negatives in the decoder loss"});
  v("temperature", c.temperature, FieldSpec{.doc = "contrastive temperature, e.g. 0.1", .min = 0, .max = 10, .min_open = true});
  v("pool", c.pool, FieldSpec{.doc = "encoder pooling for L_cc"});
  v("proj_head", c.proj_head, FieldSpec{.doc = "projection head before L_cc"});
  v("w_re", c.w_re, FieldSpec{.doc = "weight of L_re", .min = 0});
  v("w_cc", c.w_cc, FieldSpec{.doc = "weight of L_cc", .min = 0});
  v("w_cp", c.w_cp, FieldSpec{.doc = "weight of L_cp", .min = 0});
  v("cc_denominator", c.cc_denominator, FieldSpec{.doc = "NT-Xent denominator: negatives only (public code) or all", .id_omits_default = true});
  v("cs_final_norm", c.cs_final_norm, FieldSpec{.doc = "encoder final norm before L_cc and decoder (public code: off)", .id_omits_default = true});
  v("cp_tokens", c.cp_tokens, FieldSpec{.doc = "decoder tokens L_cp predicts", .id_omits_default = true});
  v("cp_head", c.cp_head, FieldSpec{.doc = "L_cp predictor: BatchNorm1d(L) MLP (public code) or GELU MLP", .id_omits_default = true});
  v("re_reduction", c.re_reduction, FieldSpec{.doc = "L_re over the two views", .id_omits_default = true});
  v("view_masks", c.view_masks, FieldSpec{.doc = "masks of the two views", .id_omits_default = true});
  v("square_crop", c.square_crop, FieldSpec{.doc = "square second view instead of aspect 3/4..4/3", .id_omits_default = true});
}

template <class V>
void visit_fields(DataConfig& c, V&& v) {
  v("dataset", c.dataset, FieldSpec{.doc = "pre-training dataset (registry name), e.g. eurosat"});
  v("root", c.root, FieldSpec{.doc = "data root folder, e.g. ../shared/data"});
  v("shards", c.shards, FieldSpec{.doc = "packed shard folder, read as it is ('' = the cache of data.root's images)"});
  v("max_images", c.max_images, FieldSpec{.doc = "cap on pre-training images (0 = all)", .min = 0});
  v("split", c.split, FieldSpec{.doc = "pre-training split"});
  v("train_fraction", c.train_fraction, FieldSpec{.doc = "train share of the split, e.g. 0.8", .min = 0, .max = 1, .min_open = true, .max_open = true});
  v("crop_min", c.crop_min, FieldSpec{.doc = "crop area fraction, lower", .min = 0, .max = 1, .min_open = true});
  v("crop_max", c.crop_max, FieldSpec{.doc = "crop area fraction, upper", .min = 0, .max = 1, .min_open = true});
  v("hflip", c.hflip, FieldSpec{.doc = "random horizontal flip"});
  v("workers", c.workers, FieldSpec{.doc = "loader threads", .min = 1, .max = 64});
  v("skip_corrupt", c.skip_corrupt, FieldSpec{.doc = "skip unreadable images, counting them"});
}

template <class V>
void visit_fields(TrainConfig& c, V&& v) {
  v("epochs", c.epochs, FieldSpec{.doc = "epochs, e.g. 800", .min = 1, .max = 100000});
  v("batch", c.batch, FieldSpec{.doc = "global batch size, e.g. 4096", .min = 1, .max = 1 << 20});
  v("blr", c.blr, FieldSpec{.doc = "base learning rate, e.g. 1.5e-4", .min = 0, .max = 10, .min_open = true});
  v("lr", c.lr, FieldSpec{.doc = "absolute lr (0 = blr * batch / 256 * rule)", .min = 0, .max = 10});
  v("min_lr", c.min_lr, FieldSpec{.doc = "cosine floor", .min = 0, .max = 10});
  v("warmup_epochs", c.warmup_epochs, FieldSpec{.doc = "warm-up epochs, e.g. 40", .min = 0});
  v("weight_decay", c.weight_decay, FieldSpec{.doc = "AdamW weight decay, e.g. 0.05", .min = 0, .max = 10});
  v("beta1", c.beta1, FieldSpec{.doc = "AdamW beta1", .min = 0, .max = 1, .max_open = true});
  v("beta2", c.beta2, FieldSpec{.doc = "AdamW beta2", .min = 0, .max = 1, .max_open = true});
  v("clip_grad", c.clip_grad, FieldSpec{.doc = "max grad norm (0 = off)", .min = 0});
  v("precision", c.precision, FieldSpec{.doc = "numeric precision"});
  v("max_steps", c.max_steps, FieldSpec{.doc = "step cap (0 = none)", .min = 0});
  v("ckpt_every", c.ckpt_every, FieldSpec{.doc = "checkpoint interval in steps", .min = 1});
  v("log_every", c.log_every, FieldSpec{.doc = "metric interval in steps", .min = 1});
  v("diverge_factor", c.diverge_factor, FieldSpec{.doc = "grad-norm spike factor meaning divergence", .min = 1});
  v("cuda_graph", c.cuda_graph, FieldSpec{.doc = "CUDA-graph train step"});
}

template <class V>
void visit_fields(EvalConfig& c, V&& v) {
  v("protocols", c.protocols, FieldSpec{.doc = "evaluations after pre-training"});
  v("dataset", c.dataset, FieldSpec{.doc = "evaluation dataset, e.g. eurosat"});
  v("scales", c.scales, FieldSpec{.doc = "KNN input scales, e.g. [0.125, 0.25, 0.5, 1.0]", .min = 0, .max = 1, .min_open = true});
  v("knn_k", c.knn_k, FieldSpec{.doc = "KNN neighbours, e.g. 20", .min = 1, .max = 10000});
  v("knn_t", c.knn_t, FieldSpec{.doc = "KNN vote temperature, e.g. 0.07", .min = 0, .max = 10, .min_open = true});
  v("max_train", c.max_train, FieldSpec{.doc = "cap on eval train images (0 = all)", .min = 0});
  v("max_val", c.max_val, FieldSpec{.doc = "cap on eval val images (0 = all)", .min = 0});
  v("probe_epochs", c.probe_epochs, FieldSpec{.doc = "linear probe epochs", .min = 1});
  v("probe_lr", c.probe_lr, FieldSpec{.doc = "linear probe lr", .min = 0, .min_open = true});
  v("ft_epochs", c.ft_epochs, FieldSpec{.doc = "fine-tuning epochs", .min = 1});
  v("ft_lr", c.ft_lr, FieldSpec{.doc = "fine-tuning base lr", .min = 0, .min_open = true});
  v("ft_drop_path", c.ft_drop_path, FieldSpec{.doc = "fine-tuning stochastic depth rate (MAE: 0.1)", .min = 0, .max = 1, .max_open = true, .id_omits_default = true});
  v("ft_train_ratio", c.ft_train_ratio, FieldSpec{.doc = "fine-tune train ratio (0 = dataset default)", .min = 0, .max = 1});
  v("random_init", c.random_init, FieldSpec{.doc = "evaluate the untrained encoder instead"});
  v("knn_resize", c.knn_resize, FieldSpec{.doc = "reduced KNN scales: encode at that size (Scale-MAE) or upsample to img_size", .id_omits_default = true});
  v("knn_gsd", c.knn_gsd, FieldSpec{.doc = "GSD-scaled positions at reduced KNN scales (Scale-MAE --eval_gsd)", .id_omits_default = true});
  v("knn_norm", c.knn_norm, FieldSpec{.doc = "KNN input normalisation statistics", .id_omits_default = true});
}

template <class V>
void visit_fields(ResourcesConfig& c, V&& v) {
  v("gpus", c.gpus, FieldSpec{.doc = "GPUs per run, e.g. 8; 0 = the fewest whose memory fits the estimate", .min = 0, .max = 4096});
  v("mem_gb", c.mem_gb, FieldSpec{.doc = "peak GPU memory per rank in GiB (0 = estimated from the model)", .min = 0});
  v("gpu_mem_gb", c.gpu_mem_gb, FieldSpec{.doc = "memory of one GPU in GiB assumed by gpus: 0, e.g. 79", .min = 0, .min_open = true, .id_omits_default = true});
}

// Sections of RunConfig, in canonical order.
template <class V>
void visit_sections(RunConfig& c, V&& v) {
  v("model", c.model);
  v("method", c.method);
  v("data", c.data);
  v("train", c.train);
  v("eval", c.eval);
  v("resources", c.resources);
}

}  // namespace ablate
