// Streaming loader: each epoch a permutation of the pool, exact resume from a saved state,
// disjoint rank slices, subsets and caps, and batch contents equal to the shards.
#include "datasets/loader.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "datasets/shards.h"
#include "pch/torch_pch.h"
#include "tests/datasets/test_data.h"
#include "tests/support/catch.h"

using namespace ablate;
using namespace ablate::test;

namespace {

// 3 classes x 17 random 8x8 images, packed once per test case.
struct Packed {
  TempDir tmp{"loader"};
  std::shared_ptr<const ShardSet> set;
  Packed() {
    write_synthetic_classes(tmp.path / "src", 3, 17, 8, 42);
    PackOptions opts;
    opts.out = tmp.path / "packed";
    opts.size = 8;
    opts.images_per_shard = 10;
    pack_index(open_folder(tmp.path / "src"), opts);
    set = std::make_shared<const ShardSet>(ShardSet::open(opts.out, true));
  }
};

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// Sample indices of the next `batches` batches.
std::vector<std::vector<int64_t>> drain(Loader& l, int batches) {
  std::vector<std::vector<int64_t>> out;
  for (int b = 0; b < batches; ++b) out.push_back(as_vector(l.next()->indices));
  return out;
}

}  // namespace

TEST_CASE("batches hold the shard images, labels and indices", "[datasets][loader]") {
  Packed p;
  LoaderOptions o;
  o.batch = 7;
  Loader l(p.set, o);
  for (int b = 0; b < 5; ++b) {
    const Batch batch = *l.next();
    REQUIRE(batch.images.sizes() == torch::IntArrayRef({7, 3, 8, 8}));
    REQUIRE(batch.images.dtype() == torch::kUInt8);
    const auto idx = as_vector(batch.indices), lab = as_vector(batch.labels);
    for (int64_t k = 0; k < 7; ++k) {
      const auto i = static_cast<size_t>(idx[static_cast<size_t>(k)]);
      CHECK(lab[static_cast<size_t>(k)] == p.set->label(i));
      const torch::Tensor img = batch.images[k].contiguous();
      CHECK(std::equal(p.set->chw(i), p.set->chw(i) + p.set->image_bytes(), img.data_ptr<uint8_t>()));
    }
  }
}

TEST_CASE("each epoch is a fresh permutation of the pool", "[datasets][loader]") {
  Packed p;
  LoaderOptions o;
  o.batch = 10;
  o.drop_last = false;
  o.max_epochs = 3;
  o.workers = 3;
  Loader l(p.set, o);
  REQUIRE(l.batches_per_epoch() == 6);  // 51 images: 5 full batches + 1
  std::map<int64_t, std::vector<int64_t>> epochs;
  int batches = 0;
  while (auto b = l.next()) {
    auto v = as_vector(b->indices);
    auto& e = epochs[b->start.epoch];
    CHECK(b->start.position == static_cast<int64_t>(e.size()));
    e.insert(e.end(), v.begin(), v.end());
    ++batches;
  }
  CHECK(batches == 18);
  REQUIRE(epochs.size() == 3);
  std::vector<int64_t> all(51);
  std::iota(all.begin(), all.end(), 0);
  for (auto& [e, order] : epochs) {
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == all);
  }
  CHECK(epochs[0] != epochs[1]);
  CHECK(l.state() == LoaderState{3, 0});
  CHECK_FALSE(l.next().has_value());
}

TEST_CASE("a loader resumed from a saved state continues the exact sample order", "[datasets][loader]") {
  Packed p;
  LoaderOptions o;
  o.batch = 8;  // 51 -> 6 batches per epoch (drop_last)
  o.seed = 5;
  o.workers = 2;
  Loader full(p.set, o);
  const auto reference = drain(full, 20);
  for (int k : {1, 5, 6, 13}) {  // within, at the end of, and into later epochs
    INFO("resume after " << k << " batches");
    Loader first(p.set, o);
    drain(first, k);
    const nlohmann::json saved = first.state();  // what a checkpoint stores
    Loader resumed(p.set, o, saved.get<LoaderState>());
    const auto rest = drain(resumed, 20 - k);
    CHECK(rest == std::vector<std::vector<int64_t>>(reference.begin() + k, reference.end()));
  }
  // From an arbitrary position (not a batch boundary) the rest of the epoch's order is the same.
  LoaderOptions ol = o;
  ol.drop_last = false;
  ol.batch = 51;
  Loader whole(p.set, ol);
  drain(whole, 1);  // epoch 0
  const auto epoch1 = as_vector(whole.next()->indices);
  ol.batch = 4;
  Loader mid(p.set, ol, LoaderState{1, 9});
  std::vector<int64_t> tail;
  while (tail.size() < 42) {
    auto v = as_vector(mid.next()->indices);
    tail.insert(tail.end(), v.begin(), v.end());
  }
  CHECK(tail == std::vector<int64_t>(epoch1.begin() + 9, epoch1.end()));
}

TEST_CASE("the order depends on seed and epoch only, not on the number of workers", "[datasets][loader]") {
  Packed p;
  LoaderOptions o;
  o.batch = 5;
  o.workers = 1;
  Loader one(p.set, o);
  o.workers = 4;
  o.prefetch = 6;
  Loader four(p.set, o);
  CHECK(drain(one, 25) == drain(four, 25));
  o.seed = 1;
  Loader other(p.set, o);
  CHECK(drain(other, 3) != drain(one, 3));
}

TEST_CASE("ranks read disjoint, equal slices of each epoch", "[datasets][loader]") {
  Packed p;
  LoaderOptions o;
  o.batch = 4;
  o.world_size = 3;
  std::vector<std::set<int64_t>> seen(3);
  for (int r = 0; r < 3; ++r) {
    o.rank = r;
    Loader l(p.set, o);
    REQUIRE(l.epoch_length() == 16);  // 51 / 3 = 17 per rank, 4 full batches
    for (auto& b : drain(l, 4)) seen[static_cast<size_t>(r)].insert(b.begin(), b.end());
  }
  for (int a = 0; a < 3; ++a)
    for (int b = a + 1; b < 3; ++b)
      for (int64_t i : seen[static_cast<size_t>(a)]) CHECK(seen[static_cast<size_t>(b)].count(i) == 0);
  CHECK(seen[0].size() == 16);
}

TEST_CASE("an index pool and max_images restrict what is read", "[datasets][loader]") {
  Packed p;
  LoaderOptions o;
  o.batch = 6;
  o.indices = {1, 4, 9, 16, 25, 36, 49, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31};
  const std::set<int64_t> pool(o.indices.begin(), o.indices.end());
  {
    Loader l(p.set, o);
    for (auto& b : drain(l, 9))
      for (int64_t i : b) CHECK(pool.count(i) == 1);
  }
  o.max_images = 7;
  o.batch = 7;
  Loader l(p.set, o);
  CHECK(l.pool_size() == 7);
  const auto e0 = drain(l, 1)[0], e1 = drain(l, 1)[0];
  CHECK(std::set<int64_t>(e0.begin(), e0.end()) == std::set<int64_t>(e1.begin(), e1.end()));  // same subset
  for (int64_t i : e0) CHECK(pool.count(i) == 1);

  o.indices = {0, 99};
  CHECK(error_of([&] { Loader bad(p.set, o); }).find("out of range") != std::string::npos);
}

// Runs on the CPU everywhere and on CUDA where present (pinned host batches, non-blocking copies).
TEST_CASE("batches arrive on the requested device", "[datasets][loader][gpu]") {
  Packed p;
  std::vector<torch::Device> devices = {torch::kCPU};
  if (torch::cuda::is_available()) devices.emplace_back(torch::kCUDA, 0);
  for (const torch::Device& dev : devices) {
    INFO(dev);
    LoaderOptions o;
    o.batch = 8;
    o.device = dev;
    Loader l(p.set, o);
    for (int k = 0; k < 3; ++k) {
      const Batch b = *l.next();
      CHECK(b.images.device() == dev);
      CHECK(b.labels.device() == dev);
      const torch::Tensor host = b.images.cpu().contiguous();
      const auto idx = as_vector(b.indices.cpu());
      for (size_t j = 0; j < idx.size(); ++j) {
        const auto i = static_cast<size_t>(idx[j]);
        CHECK(std::equal(p.set->chw(i), p.set->chw(i) + p.set->image_bytes(),
                         host[static_cast<int64_t>(j)].data_ptr<uint8_t>()));
      }
    }
  }
}
