// Where the golden outputs of the official implementations live (../shared/golden, see its
// README), and how a test reads one case's tensors.
//
// The folder is ABLATE_GOLDEN_DIR when set, else ../shared/golden beside the checkout. A missing
// folder is an error that names the path and the variable, never a silent skip: the parity suite
// is the ground truth of what `ablate` computes.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "harness/check.h"
#include "methods/safetensors.h"

namespace ablate::test {

inline std::filesystem::path golden_dir() {
  const char* env = std::getenv("ABLATE_GOLDEN_DIR");
  std::filesystem::path dir = env && *env ? std::filesystem::path(env)
                                          : std::filesystem::path(ABLATE_TEST_SOURCE_DIR) / ".." / "shared" / "golden";
  if (!std::filesystem::is_directory(dir))
    throw DataError(fmt::format("golden outputs not found at {} (set ABLATE_GOLDEN_DIR, or place the "
                                "shared folder beside the checkout)", dir.string()));
  return dir;
}

// The tensors of `<golden>/<case_name>/<file>`, e.g. golden_tensors("mae_tiny", "outputs.safetensors").
inline SafetensorsFile golden_tensors(const std::string& case_name, const std::string& file) {
  return read_safetensors(golden_dir() / case_name / file);
}

}  // namespace ablate::test
