// The `.safetensors` file format, read and written without Python.
//
// Format (huggingface/safetensors, stable since 0.3): an 8-byte little-endian unsigned header
// length N, then N bytes of JSON, then the raw tensor bytes. The JSON maps each tensor name to
// {"dtype": "F32"|"F16"|"BF16"|"F64"|"I64"|"I32"|"I16"|"I8"|"U8"|"BOOL", "shape": [..],
// "data_offsets": [begin, end]} (offsets relative to the end of the header, little-endian,
// C-contiguous), plus an optional "__metadata__" map of string to string. A name may contain dots
// ("blocks.0.attn.qkv.weight", or golden files' flat names such as "mr085.e290.select_index").
//
// Written the way the reference `safetensors.torch.save_file` writes (and timm's `save_for_hf`
// therefore does): tensors ordered by dtype size descending then name, packed without gaps, the
// JSON without spaces, padded with spaces to a multiple of 8. A file written from the tensors of a
// file read is then byte-identical to it (tested on the golden timm file).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <torch/types.h>

namespace ablate {

struct SafetensorsFile {
  std::map<std::string, torch::Tensor> tensors;      // CPU, contiguous, owning their memory
  std::map<std::string, std::string> metadata;       // "__metadata__" (often empty)
};

// Throws DataError naming `file` (and the tensor) on a missing file, a truncated or malformed
// header, an unknown dtype, or offsets that do not match the shape.
SafetensorsFile read_safetensors(const std::filesystem::path& file);

// Writes atomically (temporary file, fsync, rename). Tensors are moved to the CPU and made
// contiguous; an unsupported dtype is an InternalError.
void write_safetensors(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace ablate
