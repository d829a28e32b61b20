// Catch2 v2 (Debian: one header) and v3 (Ubuntu: split headers) behind one include.
// ABLATE_SKIP(msg) skips the rest of a test at run time in both (v2 has no SKIP).
#pragma once
#if ABLATE_CATCH2_V3
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#define ABLATE_SKIP(msg) SKIP(msg)
using Catch::Approx;  // v2 puts Approx in the global namespace already
#else
#include <catch2/catch.hpp>
// v2 has no SKIP: record the skip as a passing assertion (so --warn NoAssertions does not fail
// it) and leave the test.
#define ABLATE_SKIP(msg)               \
  do {                                 \
    WARN("skipped: " << msg);          \
    SUCCEED("skipped: " << msg);       \
    return;                            \
  } while (0)
#endif
