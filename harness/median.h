// The median of a sample: the middle value of an odd-length sample, the mean of the two middle
// values of an even-length one. One definition for every layer that summarises a series: the
// trainer's divergence guard (a grad-norm spike against the running median of the logged norms),
// the report statistics and metric sources (reports/stats.h) and `ablate bench`'s step times.
#pragma once

#include <vector>

namespace ablate {

// Median of `x` (taken by value: it is partially reordered). `x` must not be empty.
double median(std::vector<double> x);

}  // namespace ablate
