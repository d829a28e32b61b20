// The median (see median.h).
#include "harness/median.h"

#include <algorithm>

#include "harness/check.h"

namespace ablate {

double median(std::vector<double> x) {
  ABLATE_CHECK(!x.empty(), "median of an empty sample");
  // nth_element puts the upper middle value at h and everything smaller before it, so the lower
  // middle value of an even-length sample is the largest of that first half.
  const std::size_t h = x.size() / 2;
  std::nth_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(h), x.end());
  if (x.size() % 2) return x[h];
  const double lower = *std::max_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(h));
  return 0.5 * (lower + x[h]);
}

}  // namespace ablate
