// The benchmark datasets and pre-training corpora ablate knows by name, and opening one from disk.
//
// A registry entry fixes what a published dataset must look like (class folder names, per-class
// image counts, the train ratios of its evaluation protocol), so a run on an incomplete or
// mislabelled copy fails loudly instead of producing numbers that silently differ from the papers.
// Opening lists the image files (sorted, per class) and checks them against the entry.
//
// Layouts on disk, under <data root>/<folder>:
//  * class folders: <folder>/<class name>/<image>  (benchmarks, and any unregistered folder)
//  * manifest: <folder>/manifest.txt, one image per line: "relative/path[<TAB or space>label]"
//    (pre-training corpora; the optional label is a class name; a line that ends in an image
//    extension is taken whole as a path, so paths may contain spaces). Without a manifest, a corpus
//    folder is scanned recursively and its images are unlabelled.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ablate {

enum class DatasetLayout { ClassFolders, Corpus };

struct DatasetSpec {
  std::string name;    // registry key, e.g. "eurosat"
  std::string folder;  // folder under the data root, e.g. "eurosat_rgb"
  std::string title;   // human name and citation hint, for error messages
  DatasetLayout layout = DatasetLayout::ClassFolders;
  std::vector<std::string> classes;   // label order; empty: taken from the data (unregistered)
  std::vector<int64_t> class_counts;  // expected images per class; empty: not checked
  int64_t expected_count = 0;         // expected total images; 0: not checked
  std::vector<double> train_ratios;   // evaluation protocol; the first is the default
  int native_size = 0;                // typical image side in pixels (0: varies)
  double gsd_m = 0.0;                 // typical ground sample distance in metres (0: varies)
  // Per-channel RGB mean and std of pixel values / 255 as in Scale-MAE's dataloaders (89280d8),
  // which its KNN evaluation normalises with (eval.knn_norm: dataset); empty when unknown.
  std::vector<double> pixel_mean, pixel_std;
};

// Every registered dataset, benchmarks first.
std::vector<DatasetSpec> dataset_registry();
// The entry called `name`; ConfigError listing the known names when there is none.
DatasetSpec dataset_spec(std::string_view name);
// A class-folder dataset with no expectations: classes are the subfolders found, sorted.
DatasetSpec unregistered_spec(const std::filesystem::path& folder);

// An opened dataset: image files in label order (class by class, sorted by path within a class).
struct DatasetIndex {
  DatasetSpec spec;
  std::filesystem::path dir;         // root/<folder>
  std::vector<std::string> classes;  // label -> class name
  std::vector<std::string> files;    // paths relative to dir, '/'-separated
  std::vector<int32_t> labels;       // per file; -1 = unlabelled

  std::filesystem::path path(size_t i) const { return dir / files[i]; }
  // The images at `indices` (in that order), same spec and classes.
  DatasetIndex subset(const std::vector<int64_t>& indices) const;
};

// Lists and verifies `spec` under data_root/spec.folder. Throws DataError when the folder is
// missing (saying where it looked and how to point ablate at the data), when class folders differ
// from the registry (names compared ignoring case, '_', '-' and spaces, as published copies vary)
// or when counts differ, naming the class.
DatasetIndex open_dataset(const DatasetSpec& spec, const std::filesystem::path& data_root);
// As open_dataset, for a dataset folder given directly (e.g. `ablate data pack SRC`).
DatasetIndex open_dataset_dir(const DatasetSpec& spec, const std::filesystem::path& dir);
// open_dataset(dataset_spec(name), data_root).
DatasetIndex open_dataset(std::string_view name, const std::filesystem::path& data_root);
// A folder outside the registry: class folders, a manifest.txt, or a flat/recursive image folder.
DatasetIndex open_folder(const std::filesystem::path& dir);

// Whether `path` has an image extension ablate decodes (.jpg .jpeg .png .tif .tiff, any case).
bool is_image_file(const std::filesystem::path& path);

}  // namespace ablate
