// The median against hand-computed values: odd lengths give the middle value, even lengths the
// mean of the two middle values (not the upper one), whatever the input order.
#include "harness/median.h"

#include <algorithm>
#include <vector>

#include "tests/support/catch.h"

using namespace ablate;

TEST_CASE("median of odd-length samples is the middle value", "[median]") {
  CHECK(median({7.0}) == 7.0);
  CHECK(median({3, 1, 2}) == 2.0);
  CHECK(median({10, -4, 6, 6, 100}) == 6.0);    // sorted: -4 6 6 10 100
  CHECK(median({5, 1, 4, 2, 3, 9, 0}) == 3.0);  // sorted: 0 1 2 3 4 5 9
}

TEST_CASE("median of even-length samples is the mean of the two middle values", "[median]") {
  CHECK(median({1, 2}) == 1.5);
  CHECK(median({4, 1, 3, 2}) == 2.5);           // sorted: 1 2 3 4
  CHECK(median({8, 0.5, 100, 2, 7, 3}) == 5.0);  // sorted: 0.5 2 3 7 8 100 -> (3 + 7) / 2
  CHECK(median({2, 2, 2, 9}) == 2.0);           // tied middle values
  CHECK(median({-3, -1}) == -2.0);
}

TEST_CASE("median does not depend on the input order", "[median]") {
  const std::vector<double> sorted{1, 2, 3, 5, 8, 13};  // median (3 + 5) / 2 = 4
  std::vector<double> x = sorted;
  do {
    CHECK(median(x) == 4.0);
  } while (std::next_permutation(x.begin(), x.end()));
}
