// Reading configs from YAML with exact error locations, cross-field validation, canonical JSON
// and the run-id hash, and command-line overrides.
#include "harness/config_io.h"

#include "harness/hash.h"
#include "tests/support/catch.h"
#include "tests/support/errors.h"

using namespace ablate;

namespace {

RunConfig from_text(const std::string& yaml) { return config_from_yaml(YAML::Load(yaml), "cfg.yaml"); }

ConfigError yaml_error(const std::string& yaml) {
  return error_of([&] { from_text(yaml); });
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("nested and dotted keys read into RunConfig", "[config_io]") {
  RunConfig c = from_text(
      "seed: 3\n"
      "model: {size: vit_s, img_size: 224, patch_size: 16}\n"
      "method.mask_ratio: 0.85\n"
      "method:\n"
      "  psts_order: [far, near, random]\n"
      "eval: {scales: [0.5, 1]}\n");
  CHECK(c.seed == 3);
  CHECK(c.model.size == "vit_s");
  CHECK(c.model.img_size == 224);
  CHECK(c.method.mask_ratio == 0.85);
  CHECK(c.method.psts_order == std::vector<PstsStage>{PstsStage::far, PstsStage::near, PstsStage::random});
  CHECK(c.eval.scales == std::vector<double>{0.5, 1.0});
  CHECK(c.train.epochs == RunConfig{}.train.epochs);  // untouched keys keep defaults
}

TEST_CASE("unknown keys point at the key with a suggestion", "[config_io]") {
  ConfigError e = yaml_error("model:\n  size: vit_b\nmethod:\n  mask_ratoi: 0.8\n");
  CHECK(e.where == "cfg.yaml:4:3");
  CHECK(e.key == "method.mask_ratoi");
  CHECK(contains(e.hint, "did you mean 'method.mask_ratio'"));
  CHECK(contains(e.hint, "method.recon_ratio"));  // lists the allowed keys of the section
  e = yaml_error("modle: {size: vit_b}\n");
  CHECK(e.where == "cfg.yaml:1:1");
  CHECK(contains(e.hint, "did you mean 'model'"));
  e = yaml_error("model: vit_b\n");
  CHECK(contains(e.problem, "is a section"));
}

TEST_CASE("types are checked with the value's location", "[config_io]") {
  ConfigError e = yaml_error("train:\n  epochs: 2.5\n");
  CHECK(e.where == "cfg.yaml:2:11");
  CHECK(e.key == "train.epochs");
  CHECK(contains(e.problem, "expected an integer"));
  e = yaml_error("model: {qkv_bias: 1}\n");
  CHECK(e.key == "model.qkv_bias");
  CHECK(contains(e.problem, "true or false"));
  e = yaml_error("train: {blr: fast}\n");
  CHECK(contains(e.problem, "expected a number"));
  e = yaml_error("method: {psts_order: near}\n");
  CHECK(contains(e.problem, "a list of strings"));
  e = yaml_error("eval: {scales: [0.5, big]}\n");
  CHECK(e.key == "eval.scales");
  e = yaml_error("model: {size: [vit_b]}\n");
  CHECK(contains(e.problem, "expected a string, got a list"));
  e = yaml_error("model:\n  size:\n");
  CHECK(e.key == "model.size");
  e = yaml_error("train: {blr: .inf}\n");
  CHECK(e.key == "train.blr");
}

TEST_CASE("ranges and choices from FieldSpec", "[config_io]") {
  ConfigError e = yaml_error("method: {mask_ratio: 1.0}\n");
  CHECK(e.where == "cfg.yaml:1:22");
  CHECK(contains(e.problem, "1 is out of range"));
  CHECK(e.hint == "allowed: 0 < value < 1");
  e = yaml_error("model: {img_size: 4}\n");
  CHECK(e.hint == "allowed: 8 <= value <= 4096");
  e = yaml_error("model: {decoder: crossy}\n");
  CHECK(contains(e.hint, "did you mean 'cross'"));
  e = yaml_error("eval: {protocols: [knn, svm]}\n");
  CHECK(contains(e.problem, "'svm' is not allowed"));
  e = yaml_error("seed: -1\n");
  CHECK(e.key == "seed");
  e = yaml_error("train: {epochs: 99999999999}\n");
  CHECK(e.key == "train.epochs");
}

TEST_CASE("choice fields: words in, enumerators inside, the same words out", "[config_io]") {
  RunConfig c = from_text(
      "model: {decoder: cross}\n"
      "method: {name: selectivemae, recon_ratio: 0.25, hog_mode: official, hog_select: multinomial,\n"
      "         psts_order: [random, far, near], lr_rule: m_over_r}\n"
      "train: {precision: bf16}\n"
      "eval: {protocols: [linprobe, knn], knn_norm: dataset}\n");
  CHECK(c.model.decoder == DecoderKind::cross);
  CHECK(c.method.name == MethodKind::selectivemae);
  CHECK(c.method.hog_mode == HogMode::official);
  CHECK(c.method.hog_select == HogSelect::multinomial);
  CHECK(c.method.psts_order == std::vector<PstsStage>{PstsStage::random, PstsStage::far, PstsStage::near});
  CHECK(c.method.lr_rule == LrRule::m_over_r);
  CHECK(c.train.precision == Precision::bf16);
  CHECK(c.eval.protocols == std::vector<Protocol>{Protocol::linprobe, Protocol::knn});
  CHECK(c.eval.knn_norm == KnnNorm::dataset);
  // Stored configs and run ids hold the words, as when these fields were strings.
  const nlohmann::json j = config_to_json(c);
  CHECK(j.at("model").at("decoder") == "cross");
  CHECK(j.at("method").at("psts_order") == nlohmann::json{"random", "far", "near"});
  CHECK(j.at("train").at("precision") == "bf16");
  CHECK(j.at("eval").at("protocols") == nlohmann::json{"linprobe", "knn"});
  CHECK(config_to_json(RunConfig{}).at("train").at("precision") == "auto");
  const RunConfig back = config_from_json(j);
  CHECK(back.method.psts_order == c.method.psts_order);
  CHECK(back.eval.protocols == c.eval.protocols);
  CHECK(config_hash(back) == config_hash(c));
  // A stored config with an unknown word is refused like a YAML one.
  nlohmann::json bad = j;
  bad["method"]["hog_mode"] = "papper";
  const ConfigError e = error_of([&] { config_from_json(bad); });
  CHECK(e.key == "method.hog_mode");
  CHECK(contains(e.hint, "did you mean 'paper'"));
  // Every enum's words are the field's choices (what `ablate plan --describe` lists).
  for (const FieldInfo& f : config_fields())
    if (f.key == "method.cp_head") CHECK(f.spec.choices == std::vector<std::string>{"bn", "gelu"});
    else if (f.key == "eval.protocols") CHECK(f.spec.choices == choice_words<Protocol>());
  CHECK(name_of(Precision::automatic) == std::string("auto"));
  CHECK(parse_choice<Precision>("auto") == Precision::automatic);
  CHECK_FALSE(parse_choice<Precision>("fp16").has_value());
}

TEST_CASE("a key given twice is an error at the second one", "[config_io]") {
  ConfigError e = yaml_error("train:\n  epochs: 1\n  epochs: 2\n");
  CHECK(e.where == "cfg.yaml:3:3");
  e = yaml_error("model: {size: vit_b}\nmodel.size: vit_s\n");
  CHECK(e.where == "cfg.yaml:2:1");
  CHECK(e.key == "model.size");
}

TEST_CASE("cross-field validation names the field", "[config_io]") {
  struct Case {
    const char* yaml;
    const char* key;
    const char* problem;
  };
  const Case cases[] = {
      {"model: {img_size: 64, patch_size: 7}", "model.patch_size", "not a multiple"},
      {"model: {dec_dim: 100, dec_heads: 16}", "model.dec_heads", "not divisible"},
      {"model: {size: vit_xl}", "model.size", "unknown model size"},
      {"method: {mask_ratio: 0.5, recon_ratio: 0.6}", "method.recon_ratio", "exceeds mask_ratio"},
      {"method: {psts_order: [near, near, far]}", "method.psts_order", "permutation"},
      {"method: {psts_order: [near, far]}", "method.psts_order", "permutation"},
      {"method: {psts_bounds: [0.1, 0.3, 0.2, 0.5]}", "method.psts_bounds", "non-decreasing"},
      {"method: {psts_bounds: [0.1, 0.3, 0.5]}", "method.psts_bounds", "4 non-decreasing"},
      {"method: {scale_min: 0.5, scale_max: 0.5}", "method.scale_min", "below scale_max"},
      {"data: {crop_min: 0.9, crop_max: 0.5}", "data.crop_min", "exceeds crop_max"},
      {"train: {batch: 30}\nresources: {gpus: 4}", "train.batch", "does not split evenly over 4"},
      {"resources: {gpus: 3}", "resources.gpus", "does not split evenly over 3"},  // default batch 64
      {"method: {name: crossmae}", "method.name", "cross-attention decoder"},
      {"method: {name: selectivemae, recon_ratio: 0.25}", "method.name", "cross-attention decoder"},
      {"model: {decoder: cross}\nmethod: {name: selectivemae}", "method.name", "recon_ratio must be > 0"},
      {"method: {psts: true}", "method.psts", "part of selectivemae"},
      // The official HOG score is ~0 everywhere: its top-k would rank rounding noise.
      {"method: {hog_mode: official}", "method.hog_mode", "ranks rounding noise"},
      {"method: {hog_mode: official, hog_select: topk}", "method.hog_select", "ranks rounding noise"},
      {"model: {dec_self_attn: true}", "model.dec_self_attn", "cross decoder"},
      {"method: {name: crossscale, multiscale: false}", "method.multiscale", "need multiscale"},
      {"method: {name: crossscale, cp_tokens: masked}", "method.cp_tokens", "one mask for both views"},
      {"model: {decoder: cross}\nmethod: {name: crossscale}", "model.decoder", "no token for every patch"},
      {"method: {name: crossscale, cp_tokens: masked, view_masks: shared}", "method.cp_tokens", "all L token positions"},
      {"eval: {scales: [0.1, 1.0]}", "eval.scales", "less than one 8 px patch"},  // 0.1 * 64 = 6 px
      {"eval: {protocols: []}", "eval.protocols", "at least one"},
      {"eval: {protocols: [knn, knn]}", "eval.protocols", "twice"},
      // floor(0.875 * 2) = 1: epoch 0 only scores, so no epoch would be pruned.
      {"method: {infobatch: true, infobatch_stop: 0.875}\ntrain: {epochs: 2}", "method.infobatch_stop", "prunes no epoch"},
      {"method: {infobatch: true}\ntrain: {epochs: 2}", "train.epochs", "floor(0.875 * 2) = 1"},
      // A 5-epoch warm-up in a 4-epoch run: the lr would stay below its peak throughout.
      {"train: {epochs: 4, warmup_epochs: 5}", "train.warmup_epochs", "longer than the run (4 epochs)"},
      {"train: {epochs: 1, warmup_epochs: 1.5}", "train.warmup_epochs", "never reach its peak"},
      // 16x16 image, 8x8 patches: L = 4; int(4 * (1 - 0.9)) = 0 visible.
      {"model: {img_size: 16, patch_size: 8}\nmethod: {mask_ratio: 0.9}", "method.mask_ratio", "no patch stays visible"},
      // 4 * (1 - 1e-17) rounds to 4.0: every patch visible, none masked.
      {"model: {img_size: 16, patch_size: 8}\nmethod: {mask_ratio: 1.0e-17}", "method.mask_ratio", "no patch is masked"},
  };
  for (const Case& c : cases) {
    INFO(c.yaml);
    ConfigError e = yaml_error(c.yaml);
    CHECK(e.key == c.key);
    CHECK(contains(e.problem, c.problem));
    CHECK(contains(e.where, "cfg.yaml:"));
  }
  // The valid counterparts load.
  CHECK_NOTHROW(from_text("model: {decoder: cross}\nmethod: {name: selectivemae, recon_ratio: 0.25, psts: true}"));
  CHECK_NOTHROW(from_text("model: {img_size: 16, patch_size: 8}\nmethod: {mask_ratio: 0.5}"));
  CHECK_NOTHROW(from_text("method: {hog_mode: official, hog_select: multinomial}"));
  CHECK_NOTHROW(from_text("method: {name: crossscale, multiscale: false, loss_cc: false, loss_cp: false}"));
  CHECK_NOTHROW(from_text("method: {name: crossscale, cp_tokens: masked, view_masks: shared, cp_head: gelu}"));
  CHECK_NOTHROW(from_text("eval: {scales: [0.1, 1.0], knn_resize: upsample}"));
  // InfoBatch loads for every method once some epoch can be pruned (floor(0.875 * 3) = 2: epoch 1).
  for (const char* m : {"name: mae", "name: crossscale, cp_tokens: masked, view_masks: shared, cp_head: gelu",
                        "name: selectivemae, recon_ratio: 0.25, psts: true"}) {
    INFO(m);
    const RunConfig c = from_text(std::string("model: {decoder: cross}\nmethod: {infobatch: true, ") + m +
                                  "}\ntrain: {epochs: 3}");
    CHECK(c.method.infobatch);
    CHECK(infobatch_stop_epoch(c) == 2);
  }
  CHECK_NOTHROW(from_text("train: {batch: 32}\nresources: {gpus: 4}"));
  CHECK_NOTHROW(from_text("train: {epochs: 4, warmup_epochs: 4}"));  // the peak at the last step
  // The warm-up came from a default or an earlier profile, the short epochs from here: the error
  // points at the epochs.
  RunConfig shortened;
  shortened.train.warmup_epochs = 5;
  shortened.train.epochs = 2;
  FlatConfig written;
  flatten_config(YAML::Load("train: {epochs: 2}"), "scale.yaml", written);
  const ConfigError short_run = error_of([&] { validate(shortened, written); });
  CHECK(short_run.key == "train.epochs");
  CHECK(short_run.where == "scale.yaml:1:17");  // the 2
  CHECK_NOTHROW(from_text("method: {infobatch: true}\ntrain: {epochs: 8, batch: 32}\nresources: {gpus: 2}"));
}

TEST_CASE("canonical JSON holds every field with sorted keys", "[config_io]") {
  RunConfig c;
  nlohmann::json j = config_to_json(c);
  size_t leaves = 0;
  for (const auto& [key, value] : j.items()) leaves += value.is_object() ? value.size() : 1;
  CHECK(leaves == config_fields().size());
  CHECK(j.at("method").at("mask_ratio") == 0.75);
  CHECK(j.at("seed") == 0);
  std::string dump = canonical_dump(j);
  CHECK(dump.find("\"data\"") < dump.find("\"eval\""));  // sorted, not visit order (model first)
  CHECK(dump.find("\"eval\"") < dump.find("\"model\""));
  CHECK(dump.find("\": ") == std::string::npos);  // compact: no space after the colon
}

TEST_CASE("config hash: stable under key order, sensitive to values", "[config_io]") {
  RunConfig a = from_text("seed: 1\nmodel: {size: vit_s, img_size: 224, patch_size: 16}\ntrain: {epochs: 5, blr: 1.0e-3}\n");
  RunConfig b = from_text("train: {blr: 0.001, epochs: 5}\nmodel.patch_size: 16\nmodel: {img_size: 224, size: vit_s}\nseed: 1\n");
  CHECK(config_hash(a) == config_hash(b));
  CHECK(config_hash(a).size() == 12);
  // The id hashes the canonical JSON without the fields marked id_omits_default at their default,
  // and without the eval section (evaluations are records of their own).
  nlohmann::json id_json = config_to_json(a);
  id_json["resources"].erase("gpu_mem_gb");
  for (const char* k : {"cc_denominator", "cs_final_norm", "cp_tokens", "cp_head", "re_reduction", "view_masks", "square_crop"})
    id_json["method"].erase(k);
  id_json.erase("eval");
  id_json["method"].erase("psts_mix");
  CHECK(config_id_json(a) == canonical_dump(id_json));
  CHECK(config_hash(a) == sha256_hex(config_id_json(a)).substr(0, 12));
  RunConfig c = a;
  c.seed = 2;
  CHECK(config_hash(c) != config_hash(a));
  // JSON object built in a different insertion order dumps identically.
  nlohmann::json x = {{"b", 1}, {"a", {{"d", 2}, {"c", 3}}}};
  nlohmann::json y;
  y["a"]["c"] = 3;
  y["a"]["d"] = 2;
  y["b"] = 1;
  CHECK(canonical_dump(x) == canonical_dump(y));
  CHECK(canonical_dump(x) == R"({"a":{"c":3,"d":2},"b":1})");
}

TEST_CASE("JSON round trip preserves the config and its hash", "[config_io]") {
  RunConfig a = from_text("model: {size: vit_b, img_size: 224, patch_size: 16, decoder: cross}\n"
                          "method: {name: selectivemae, recon_ratio: 0.25, mask_ratio: 0.85, psts_bounds: [0.1, 0.2, 0.3, 0.4]}\n");
  RunConfig b = config_from_json(nlohmann::json::parse(canonical_dump(config_to_json(a))));
  CHECK(config_hash(a) == config_hash(b));
  CHECK(b.method.psts_bounds == std::vector<double>{0.1, 0.2, 0.3, 0.4});
  nlohmann::json bad = config_to_json(a);
  bad["train"]["epochz"] = 3;
  CHECK(error_of([&] { config_from_json(bad); }).key == "train.epochz");
  bad = config_to_json(a);
  bad["train"]["epochs"] = "3";
  CHECK(error_of([&] { config_from_json(bad); }).key == "train.epochs");
  bad = config_to_json(a);
  bad["method"]["mask_ratio"] = 1.5;
  CHECK(contains(error_of([&] { config_from_json(bad); }).problem, "out of range"));
}

TEST_CASE("dotted-path overrides", "[config_io]") {
  YAML::Node cfg = YAML::Load("train: {epochs: 1}\nmethod.mask_ratio: 0.5\n");
  apply_override(cfg, "train.epochs=5");
  apply_override(cfg, "method.psts_order=[far, near, random]");
  apply_override(cfg, "method.mask_ratio=0.6");  // replaces the dotted spelling in place
  apply_override(cfg, "data.dataset=ucmerced");  // creates the section
  apply_override(cfg, "seed=7");
  RunConfig c = config_from_yaml(cfg, "cfg.yaml");
  CHECK(c.train.epochs == 5);
  CHECK(c.method.psts_order == std::vector<PstsStage>{PstsStage::far, PstsStage::near, PstsStage::random});
  CHECK(c.method.mask_ratio == 0.6);
  CHECK(c.data.dataset == "ucmerced");
  CHECK(c.seed == 7);

  ConfigError e = error_of([&] { apply_override(cfg, "train.epoch=5"); });
  CHECK(e.where == "<command line>");
  CHECK(e.key == "train.epoch");
  CHECK(contains(e.hint, "did you mean 'train.epochs'"));
  CHECK(error_of([&] { apply_override(cfg, "train.epochs"); }).where == "<command line>");
  CHECK(error_of([&] { apply_override(cfg, "train.epochs=[1,"); }).where == "<command line>");

  FlatConfig flat;
  apply_override(flat, "train.epochs=9");
  CHECK(flat.at("train.epochs").where == "<command line>");
  CHECK(read_config(flat).train.epochs == 9);
  apply_override(flat, "train.epochs=nine");
  CHECK(error_of([&] { read_config(flat); }).where == "<command line>");
}

TEST_CASE("yaml_to_json types plain scalars and keeps quoted ones as strings", "[config_io]") {
  nlohmann::json j = yaml_to_json(YAML::Load("{a: 1, b: 1.5, c: true, d: '1', e: ~, f: [x, 2], g: text}"), "t.yaml");
  CHECK(j == nlohmann::json::parse(R"({"a":1,"b":1.5,"c":true,"d":"1","e":null,"f":["x",2],"g":"text"})"));
  CHECK_THROWS_AS(yaml_to_json(YAML::Load("{a: 1, a: 2}"), "t.yaml"), ConfigError);
}

TEST_CASE("yaml_to_json records where each value was written, by key path", "[config_io]") {
  const YAML::Node n = YAML::Load("- name: t\n  rows: [a, b]\n  metrics:\n    - {source: x}\n");
  SourceMarks marks;
  yaml_to_json(n, "e.yaml", &marks, "tables");
  CHECK(marks.at("tables") == "e.yaml:1:1");
  CHECK(marks.at("tables[0]") == "e.yaml:1:3");
  CHECK(marks.at("tables[0].name") == "e.yaml:1:3");
  CHECK(marks.at("tables[0].rows") == "e.yaml:2:3");  // a mapping's value at its key
  CHECK(marks.at("tables[0].rows[1]") == "e.yaml:2:13");
  CHECK(marks.at("tables[0].metrics[0].source") == "e.yaml:4:8");
  CHECK(marks.size() == 9);  // + rows[0], metrics, metrics[0]
}

TEST_CASE("invalid_utf8_at finds the first bad byte", "[config_io]") {
  CHECK(invalid_utf8_at("plain") == std::string_view::npos);
  CHECK(invalid_utf8_at("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == std::string_view::npos);  // é € 😀
  CHECK(invalid_utf8_at("ab\xff") == 2);
  CHECK(invalid_utf8_at("a\xc3") == 1);          // truncated sequence
  CHECK(invalid_utf8_at("a\xc0\x80") == 1);      // overlong encoding of NUL
  CHECK(invalid_utf8_at("\xe2\x28\xa1") == 0);  // bad continuation byte
  CHECK(yaml_error("data: {dataset: \"\xff\"}\n").key == "data.dataset");
}
