// Test helper: the ConfigError a callable throws, for checking its location, key and message.
#pragma once

#include "harness/check.h"
#include "tests/support/catch.h"

namespace ablate {

// The ConfigError `f` throws (the test fails if none).
template <class F>
ConfigError error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("no ConfigError");
  return ConfigError("", "", "");
}

}  // namespace ablate
