// PyTorch checkpoint files (`torch.save`) read and written without Python or LibTorch's TorchScript
// unpickler, so weights trained by the official MAE / SelectiveMAE / CrossMAE / Cross-Scale MAE code
// (or anyone's) can be evaluated by `ablate`, and `ablate` encoders handed back as `.pth`.
//
// Format (torch >= 1.6, `_use_new_zipfile_serialization`): a zip archive of stored (uncompressed)
// entries under one folder `<archive>/`: `data.pkl` (the pickled object), `data/<key>` (the raw
// little-endian bytes of each storage), `byteorder`, `version`, `.format_version`, ... The pickle
// names each tensor as a REDUCE of `torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
// requires_grad, hooks)` whose storage is a persistent id ('storage', torch.FloatStorage, key,
// location, numel).
//
// The unpickler is a small self-contained pickle VM (protocols 2 to 5, the opcodes torch.save and
// Python's pickle emit). Unlike LibTorch's `torch::pickle_load`, which rejects globals it does not
// know, it keeps any other object (an `argparse.Namespace` under `args`, numpy scalars in the
// optimizer state, ...) as an opaque value, so training checkpoints with `optimizer`, `scaler`,
// `epoch` and `args` load; only the state dict's tensors are read from the archive. Not supported:
// the legacy pre-1.6 tar/pickle format and compressed entries (both a DataError naming the file).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

namespace ablate {

struct TorchCheckpoint {
  std::map<std::string, torch::Tensor> state_dict;  // CPU, contiguous, owning their memory
  // Where the state dict was: "model", "state_dict", or "" when the file's top-level object is the
  // state dict itself (timm / torchvision releases).
  std::string state_dict_key;
  std::vector<std::string> other_entries;  // the other top-level keys, not read ("optimizer", "args", ...)
  std::vector<std::string> skipped;        // state dict entries that are not tensors (names)
};

// Reads the model's state dict: the top-level dict's `model` entry, else its `state_dict` entry,
// else the top-level dict itself when all its values are tensors. Throws DataError naming `file`
// (and the entry) for a missing or malformed archive, an unsupported pickle opcode, a storage that
// is missing or too small, or a file without a state dict (listing its top-level keys).
TorchCheckpoint read_torch_checkpoint(const std::filesystem::path& file);

// read_torch_checkpoint(file).state_dict.
std::map<std::string, torch::Tensor> read_torch_state_dict(const std::filesystem::path& file);

// Writes what `torch.save({top_key: OrderedDict(tensors)}, file)` writes (the MAE `save_model`
// layout with top_key "model"): archive folder named after the file's stem, entries aligned to 64
// bytes, one storage per tensor (contiguous CPU copies, keys "0", "1", ... in name order). Written
// atomically (temporary file, fsync, rename). `torch.load` and read_torch_checkpoint read it.
void write_torch_state_dict(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                            const std::string& top_key = "model");

}  // namespace ablate
