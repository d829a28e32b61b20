// Robustness of the experiment loader: 1500 mutations of a valid experiment file (lines deleted,
// duplicated, swapped; characters flipped; random YAML tokens, wrong types, out-of-range numbers
// and unknown keys inserted), from a seeded generator. Each must load or throw a ConfigError that
// says where (file:line:col) or which key; any other exception fails the test, a crash kills it.
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "harness/check.h"
#include "harness/experiment.h"
#include "tests/support/catch.h"

using namespace ablate;

namespace {

// Uses every feature of the format. Hand count of the runs at the default scale: product 2 x 2
// times zip 2 = 8 cells; the predicate drops (far.., 0.85) x 2 batches, the mapping drops
// (near.., 0.75, 32): 5 left, + 1 include = 6 cells, x 2 seeds = 12 runs.
const std::string kValid = R"(name: fuzz_base
description: "fuzz seed file"
paper: "none"
base:
  model: {size: vit_micro, img_size: 32, patch_size: 8, decoder: cross, dec_depth: 1, dec_dim: 32, dec_heads: 4}
  method:
    name: selectivemae
    recon_ratio: 0.25
    psts: true
  train: {epochs: 10, batch: 64, blr: 1.5e-4}
  seed: 0
matrix:
  product:
    method.psts_order: [[near, far, random], [far, near, random]]
    method.mask_ratio: [0.75, 0.85]
  zip:
    - {train.batch: [64, 32], data.max_images: [128, 64]}
  include:
    - {method.name: mae, model.decoder: mae, method.psts: false, method.recon_ratio: 0}
  exclude:
    - "method.mask_ratio == 0.85 and method.psts_order[0] == 'far'"
    - {train.batch: 32, method.mask_ratio: 0.75, method.psts_order: [near, far, random]}
  when:
    - {if: "method.name == 'mae'", set: {model.dec_depth: 2}}
  seeds: [0, 1]
derived:
  train.lr: "{train.blr} * {train.batch} / 256"
  data.shards: "'cache/{data.dataset}-{model.img_size}'"
scales:
  smoke: {data.max_images: 512, train.epochs: 2}
  paper: {train.epochs: 800}
default_scale: smoke
tables:
  - {rows: method.psts_order, cols: [method.mask_ratio], metric: knn_top1}
claims:
  - {text: "PSTS order matters", metric: knn_top1, delta: 0.5}
)";

const std::vector<std::string> kTokens = {
    "[", "]", "{", "}", ":", ": ", "- ", "'", "\"", "#", "&a ", "*a", "!!int ", "!!str ", "1e999", "-1", "0",
    "~", "\t", "\n", "  ", ",", "?", "|", ">", "%", "@", "`", "\\", "unknown_key: 1", "method.bogus: 2", "0x1F",
    ".nan", "true", "null", "{{x}}", "!!binary ", "*", "==", " and ", "(", ")", "[0]", "\xff", "\xc3\xa9"};
const std::vector<std::string> kWrongTypes = {"abc", "[1, 2]", "{a: 1}", "true", "''", "~", "[[x]]", "-"};
const std::vector<std::string> kBadNumbers = {"-5", "1e9", "0", "1.5", "-0.0", "99999999999999999999", "2147483648", "0.0001", "7"};
const std::vector<std::string> kUnknownKeys = {"typo_key: 3", "bogus: 1", "model.sizee: vit_b", "matrix.extra: []", "if: x"};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) lines.push_back(text.substr(start, nl - start));
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  return text;
}

template <class T>
const T& pick(const std::vector<T>& items, std::mt19937& rng) {
  return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng)];
}

// Replaces the number nearest after a random position (if any) by `replacement`.
std::string replace_number(const std::string& text, const std::string& replacement, std::mt19937& rng) {
  size_t at = std::uniform_int_distribution<size_t>(0, text.size() - 1)(rng);
  size_t start = text.find_first_of("0123456789", at);
  if (start == std::string::npos) start = text.find_first_of("0123456789");
  size_t end = text.find_first_not_of("0123456789.e-", start);
  return text.substr(0, start) + replacement + text.substr(end == std::string::npos ? text.size() : end);
}

std::string mutate(std::string text, std::mt19937& rng) {
  auto index = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  std::vector<std::string> lines = split_lines(text);
  switch (index(8)) {
    case 0:  // delete a line
      lines.erase(lines.begin() + index(lines.size()));
      return join_lines(lines);
    case 1: {  // duplicate a line
      size_t i = index(lines.size());
      lines.insert(lines.begin() + i, lines[i]);
      return join_lines(lines);
    }
    case 2:  // swap two lines
      std::swap(lines[index(lines.size())], lines[index(lines.size())]);
      return join_lines(lines);
    case 3: {  // flip a character: mostly printable ASCII, sometimes any byte (invalid UTF-8)
      bool ascii = index(4) != 0;
      text[index(text.size())] = char(std::uniform_int_distribution<int>(ascii ? 32 : 1, ascii ? 126 : 255)(rng));
      return text;
    }
    case 4:  // insert a random token
      return text.insert(index(text.size() + 1), pick(kTokens, rng));
    case 5:  // a value of the wrong type
      return replace_number(text, pick(kWrongTypes, rng), rng);
    case 6:  // a number out of its range
      return replace_number(text, pick(kBadNumbers, rng), rng);
    default: {  // an unknown key, at a random indentation
      size_t i = index(lines.size() + 1);
      lines.insert(lines.begin() + i, std::string(2 * index(4), ' ') + pick(kUnknownKeys, rng));
      return join_lines(lines);
    }
  }
}

}  // namespace

TEST_CASE("the fuzz seed file is valid", "[fuzz]") {
  Experiment ex = parse_experiment(kValid, "fuzz.yaml", "", {});
  CHECK(ex.runs.size() == 12);
  CHECK(ex.scale == "smoke");
}

TEST_CASE("mutated experiment files load or fail with a located ConfigError", "[fuzz]") {
  std::mt19937 rng(20240607);
  const std::regex location(R"(fuzz\.yaml:\d+:\d+)");
  int loaded = 0, rejected = 0;
  const int kSamples = 1500;
  for (int sample = 0; sample < kSamples; ++sample) {
    std::string text = kValid;
    int mutations = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int m = 0; m < mutations; ++m) text = mutate(text, rng);
    const std::string scale = sample % 4 == 0 ? "paper" : "";
    try {
      parse_experiment(text, "fuzz.yaml", scale, {});
      ++loaded;
    } catch (const ConfigError& e) {
      ++rejected;
      bool located = std::regex_search(e.where, location) || !e.key.empty();
      if (!located) FAIL_CHECK("sample " << sample << ": error without location or key: " << e.what() << "\n---\n" << text);
    } catch (const std::exception& e) {
      FAIL("sample " << sample << ": unexpected exception: " << e.what() << "\n---\n" << text);
    }
  }
  INFO("loaded " << loaded << ", rejected " << rejected);
  CHECK(loaded + rejected == kSamples);
  CHECK(loaded > kSamples / 20);    // mutations that keep the file valid do occur
  CHECK(rejected > kSamples / 4);   // and most are caught
}
