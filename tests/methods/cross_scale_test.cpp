// Cross-Scale MAE's second view: a crop of the requested area (aspect 3/4..4/3, or square),
// resampled to the input size. On a horizontal ramp image (value = x) a crop of width w is again a
// ramp whose slope is w / W times the original's, over a window inside the image.
#include "methods/cross_scale.h"

#include "methods/pch/torch_pch.h"

#include "tests/support/catch.h"

using namespace ablate;

TEST_CASE("scale view: crop side, ramp slope and position", "[cross_scale]") {
  torch::manual_seed(0);
  const int64_t S = 32, B = 64;
  // Pixel centres at x = 0..S-1.
  auto ramp = torch::arange(S, torch::kFloat32).view({1, 1, 1, S}).expand({B, 3, S, S}).contiguous();
  auto v = random_scale_view(ramp, 0.2, 0.8, false, /*square=*/true);
  REQUIRE(v.images.sizes() == ramp.sizes());
  CHECK(torch::equal(v.boxes.select(1, 2), v.boxes.select(1, 3)));
  auto area = v.side * v.side;
  // Integral pixel boxes (torchvision) round the area by up to a pixel per side.
  CHECK((area >= 0.2 - 2.0 / S).all().item<bool>());
  CHECK((area <= 0.8 + 2.0 / S).all().item<bool>());
  CHECK(area.std().item<double>() > 0.05);  // per-image boxes
  // Interior slope (away from the border clamp) = side; values stay inside the image.
  auto row = v.images.select(1, 0).select(1, S / 2);  // (B, S)
  auto slope = (row.select(1, S - 4) - row.select(1, 3)) / double(S - 7);
  CHECK(torch::allclose(slope, v.side, 0.0, 1e-4));
  CHECK((row >= -1e-4).all().item<bool>());
  CHECK((row <= S - 1 + 1e-4).all().item<bool>());
  // Full-area crops are the identity.
  auto same = random_scale_view(ramp, 1.0, 1.0, false, true);
  CHECK(torch::allclose(same.images, ramp, 0.0, 1e-4));
  // Shared crop: one box for the batch.
  auto shared = random_scale_view(ramp, 0.2, 0.8, true, false);
  CHECK(torch::allclose(shared.images, shared.images[0].unsqueeze(0).expand_as(shared.images)));
}

TEST_CASE("scale view: aspect ratios of the public code's RandomResizedCrop", "[cross_scale]") {
  torch::manual_seed(1);
  const int64_t S = 64, B = 256;
  auto ramp = torch::arange(S, torch::kFloat32).view({1, 1, 1, S}).expand({B, 3, S, S}).contiguous();
  auto v = random_scale_view(ramp, 0.25, 0.75, false, /*square=*/false);
  auto h = v.boxes.select(1, 2), w = v.boxes.select(1, 3);
  auto ratio = w / h;
  // log-uniform in [3/4, 4/3] before rounding to whole pixels
  CHECK((ratio >= 0.75 * (1 - 2.0 / 20)).all().item<bool>());
  CHECK((ratio <= 4.0 / 3.0 * (1 + 2.0 / 20)).all().item<bool>());
  CHECK((ratio > 1.1).any().item<bool>());
  CHECK((ratio < 0.9).any().item<bool>());
  // The horizontal slope of the resampled ramp is the box width over the image width.
  auto row = v.images.select(1, 0).select(1, S / 2);
  auto slope = (row.select(1, S - 4) - row.select(1, 3)) / double(S - 7);
  CHECK(torch::allclose(slope, w / double(S), 0.0, 1e-4));
}
