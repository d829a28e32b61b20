// Registry tables and dataset opening (see registry.h). Counts and class lists are those of the
// published releases; comments name the source of each protocol.
#include "datasets/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <tuple>

#include "harness/check.h"

namespace ablate {
namespace fs = std::filesystem;

namespace {

DatasetSpec benchmark(std::string name, std::string folder, std::string title,
                      std::vector<std::string> classes, std::vector<int64_t> class_counts,
                      int64_t expected_count, std::vector<double> train_ratios, int native_size,
                      double gsd_m) {
  DatasetSpec s;
  s.name = std::move(name);
  s.folder = std::move(folder);
  s.title = std::move(title);
  s.classes = std::move(classes);
  s.class_counts = std::move(class_counts);
  s.expected_count = expected_count;
  s.train_ratios = std::move(train_ratios);
  s.native_size = native_size;
  s.gsd_m = gsd_m;
  return s;
}

DatasetSpec corpus(std::string name, std::string folder, std::string title) {
  DatasetSpec s;
  s.name = std::move(name);
  s.folder = std::move(folder);
  s.title = std::move(title);
  s.layout = DatasetLayout::Corpus;
  return s;
}

}  // namespace

std::vector<DatasetSpec> dataset_registry() {
  std::vector<DatasetSpec> r;
  // Helber et al. 2019; the usual protocol is an 80/20 stratified split.
  r.push_back(benchmark("eurosat", "eurosat_rgb", "EuroSAT RGB (Helber et al. 2019)",
                        {"AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                         "PermanentCrop", "Residential", "River", "SeaLake"},
                        {3000, 3000, 3000, 2500, 2500, 2000, 2500, 3000, 2500, 3000},
                        /*expected_count=*/27000, {0.8}, /*native_size=*/64, /*gsd_m=*/10.0));
  // Yang and Newsam 2010; 80% (and 50%) train in the MAE-for-RS literature.
  r.push_back(benchmark(
      "ucmerced", "ucmerced", "UC Merced Land Use (Yang and Newsam 2010)",
      {"agricultural",      "airplane",       "baseballdiamond", "beach",      "buildings", "chaparral",
       "denseresidential",  "forest",         "freeway",         "golfcourse", "harbor",    "intersection",
       "mediumresidential", "mobilehomepark", "overpass",        "parkinglot", "river",     "runway",
       "sparseresidential", "storagetanks",   "tenniscourt"},
      std::vector<int64_t>(21, 100),
      /*expected_count=*/2100, {0.8, 0.5}, /*native_size=*/256, /*gsd_m=*/0.3));
  // Xia et al. 2017 (AID); protocol: 20% and 50% train.
  r.push_back(benchmark("aid", "aid", "AID (Xia et al. 2017)",
                        {"Airport",
                         "BareLand",
                         "BaseballField",
                         "Beach",
                         "Bridge",
                         "Center",
                         "Church",
                         "Commercial",
                         "DenseResidential",
                         "Desert",
                         "Farmland",
                         "Forest",
                         "Industrial",
                         "Meadow",
                         "MediumResidential",
                         "Mountain",
                         "Park",
                         "Parking",
                         "Playground",
                         "Pond",
                         "Port",
                         "RailwayStation",
                         "Resort",
                         "River",
                         "School",
                         "SparseResidential",
                         "Square",
                         "Stadium",
                         "StorageTanks",
                         "Viaduct"},
                        {360, 310, 220, 400, 360, 260, 240, 350, 410, 300, 370, 250, 390, 280, 290,
                         340, 350, 390, 370, 420, 380, 260, 290, 410, 300, 300, 330, 290, 360, 420},
                        /*expected_count=*/10000, {0.2, 0.5}, /*native_size=*/600, /*gsd_m=*/0.0));
  // Cheng et al. 2017 (NWPU-RESISC45); protocol: 10% and 20% train.
  r.push_back(benchmark("resisc45", "resisc45", "NWPU-RESISC45 (Cheng et al. 2017)",
                        {"airplane",
                         "airport",
                         "baseball_diamond",
                         "basketball_court",
                         "beach",
                         "bridge",
                         "chaparral",
                         "church",
                         "circular_farmland",
                         "cloud",
                         "commercial_area",
                         "dense_residential",
                         "desert",
                         "forest",
                         "freeway",
                         "golf_course",
                         "ground_track_field",
                         "harbor",
                         "industrial_area",
                         "intersection",
                         "island",
                         "lake",
                         "meadow",
                         "medium_residential",
                         "mobile_home_park",
                         "mountain",
                         "overpass",
                         "palace",
                         "parking_lot",
                         "railway",
                         "railway_station",
                         "rectangular_farmland",
                         "river",
                         "roundabout",
                         "runway",
                         "sea_ice",
                         "ship",
                         "snowberg",
                         "sparse_residential",
                         "stadium",
                         "storage_tank",
                         "tennis_court",
                         "terrace",
                         "thermal_power_station",
                         "wetland"},
                        std::vector<int64_t>(45, 700),
                        /*expected_count=*/31500, {0.1, 0.2}, /*native_size=*/256, /*gsd_m=*/0.0));
  // Dai and Yang 2011 (WHU-RS19); per-class counts vary around 50 and differ between copies, so
  // only the total is checked. Protocol: 40% and 60% train.
  r.push_back(benchmark("whu_rs19", "whu_rs19", "WHU-RS19 (Dai and Yang 2011)",
                        {"Airport", "Beach", "Bridge", "Commercial", "Desert", "Farmland", "footballField",
                         "Forest", "Industrial", "Meadow", "Mountain", "Park", "Parking", "Pond", "Port",
                         "railwayStation", "Residential", "River", "Viaduct"},
                        {}, /*expected_count=*/1005, {0.4, 0.6}, /*native_size=*/600, /*gsd_m=*/0.5));
  // Pre-training corpora: unlabelled for MAE pre-training, sizes vary per image; no counts checked
  // (subsets are common and legitimate).
  // Scale-MAE's statistics (mae/dataloaders/<name>.py, PIXEL_MEANS / PIXEL_STD).
  const std::vector<std::tuple<std::string, std::vector<double>, std::vector<double>>> stats = {
      {"eurosat", {0.34436897, 0.38029233, 0.40777751}, {0.20368513, 0.13663637, 0.11484352}},
      {"ucmerced", {0.4842, 0.4901, 0.4505}, {0.2180, 0.2021, 0.1958}},
      {"resisc45", {0.368, 0.381, 0.3436}, {0.2035, 0.1854, 0.1849}},
      {"whu_rs19", {0.42647115, 0.44830369, 0.40256118}, {0.24203978, 0.21878441, 0.22890343}}};
  for (DatasetSpec& spec : r)
    for (const auto& [name, mean, std] : stats)
      if (spec.name == name) std::tie(spec.pixel_mean, spec.pixel_std) = std::tie(mean, std);
  r.push_back(corpus("millionaid", "millionaid", "MillionAID (Long et al. 2021, ~1M images)"));
  r.push_back(
      corpus("opticalrs13m", "opticalrs13m", "OpticalRS-13M (SelectiveMAE, Wang et al. 2024, ~13M images)"));
  r.push_back(corpus("fmow_rgb", "fmow_rgb", "fMoW-RGB (Christie et al. 2018, ~364k train images)"));
  return r;
}

DatasetSpec dataset_spec(std::string_view name) {
  std::vector<std::string> names;
  for (auto& s : dataset_registry()) {
    if (s.name == name) return s;
    names.push_back(s.name);
  }
  throw ConfigError("", "dataset", fmt::format("unknown dataset '{}'", name),
                    fmt::format("known: {}", fmt::join(names, ", ")));
}

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".tif" || ext == ".tiff";
}

namespace {

// Class folder names as published differ in case and separators between copies
// ("footballField", "Football_Field"); compare them in this canonical form.
std::string canonical_class(std::string_view s) {
  std::string out;
  for (unsigned char c : s)
    if (std::isalnum(c)) out += static_cast<char>(std::tolower(c));
  return out;
}

std::string relative_slash(const fs::path& p, const fs::path& base) {
  return p.lexically_relative(base).generic_string();
}

// Image files below `dir` (recursively), relative to `base`, sorted.
std::vector<std::string> list_images(const fs::path& dir, const fs::path& base) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_regular_file() && is_image_file(it->path())) out.push_back(relative_slash(it->path(), base));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> subfolders(const fs::path& dir) {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().front() != '.') out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

void require_folder(const DatasetSpec& spec, const fs::path& dir) {
  if (fs::is_directory(dir)) return;
  throw DataError(
      fmt::format("dataset '{}' ({}) not found: looked in {}. Place it there ({}), or point ablate at the "
                  "folder that holds '{}/' with data.root=... (the shared data folder is ../shared/data)",
                  spec.name, spec.title, fs::absolute(dir).string(),
                  spec.layout == DatasetLayout::ClassFolders
                      ? "one subfolder per class"
                      : "images in subfolders, or a manifest.txt of relative paths",
                  spec.folder));
}

// Class folders under `dir`. With spec.classes set, folders are matched to them (canonical names),
// and every class must be present and no other folder may exist.
DatasetIndex open_class_folders(const DatasetSpec& spec, const fs::path& dir) {
  DatasetIndex idx;
  idx.spec = spec;
  idx.dir = dir;
  std::vector<fs::path> folders = subfolders(dir);
  std::vector<fs::path> class_dirs;
  if (spec.classes.empty()) {
    if (folders.empty()) throw DataError(fmt::format("{}: no class subfolders found", dir.string()));
    for (auto& f : folders) idx.classes.push_back(f.filename().string());
    class_dirs = folders;
  } else {
    std::map<std::string, fs::path> by_name;
    for (auto& f : folders) by_name[canonical_class(f.filename().string())] = f;
    std::vector<std::string> missing;
    for (auto& c : spec.classes) {
      auto it = by_name.find(canonical_class(c));
      if (it == by_name.end()) {
        missing.push_back(c);
        continue;
      }
      class_dirs.push_back(it->second);
      by_name.erase(it);
    }
    std::vector<std::string> extra;
    for (auto& [k, p] : by_name) extra.push_back(p.filename().string());
    if (!missing.empty() || !extra.empty())
      throw DataError(
          fmt::format("{}: class folders differ from the {} registry: missing [{}], unexpected [{}]",
                      dir.string(), spec.title, fmt::join(missing, ", "), fmt::join(extra, ", ")));
    idx.classes = spec.classes;
  }
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    std::vector<std::string> files = list_images(class_dirs[c], dir);
    if (!spec.class_counts.empty() && static_cast<int64_t>(files.size()) != spec.class_counts[c])
      throw DataError(fmt::format("{}: class '{}' has {} images, {} expects {}", class_dirs[c].string(),
                                  idx.classes[c], files.size(), spec.title, spec.class_counts[c]));
    for (auto& f : files) {
      idx.files.push_back(std::move(f));
      idx.labels.push_back(static_cast<int32_t>(c));
    }
  }
  return idx;
}

// manifest.txt: "path[ label]" per line; blank lines and '#' comments skipped. Labels are class
// names; class ids are their sorted order. Either every line has a label or none has.
DatasetIndex open_manifest(const DatasetSpec& spec, const fs::path& dir, const fs::path& manifest) {
  std::ifstream in(manifest);
  if (!in) throw DataError(fmt::format("{}: cannot open manifest", manifest.string()));
  DatasetIndex idx;
  idx.spec = spec;
  idx.dir = dir;
  std::vector<std::string> label_names;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    size_t e = line.find_last_not_of(" \t");
    std::string body = line.substr(b, e - b + 1);
    // A line that ends in an image extension is all path (paths may contain spaces).
    size_t sep = is_image_file(body) ? std::string::npos : body.find_last_of(" \t");
    std::string path =
        sep == std::string::npos ? body : body.substr(0, body.find_last_not_of(" \t", sep) + 1);
    std::string label = sep == std::string::npos ? "" : body.substr(sep + 1);
    if (!idx.files.empty() && label.empty() != label_names.empty())
      throw DataError(fmt::format("{}:{}: {} label; every line must have one or none must", manifest.string(),
                                  lineno, label.empty() ? "missing" : "unexpected"));
    if (!is_image_file(path))
      throw DataError(fmt::format("{}:{}: '{}' is not an image path (.jpg .jpeg .png .tif .tiff)",
                                  manifest.string(), lineno, path));
    idx.files.push_back(path);
    if (!label.empty()) label_names.push_back(label);
  }
  if (idx.files.empty()) throw DataError(fmt::format("{}: manifest lists no images", manifest.string()));
  if (label_names.empty()) {
    idx.labels.assign(idx.files.size(), -1);
    return idx;
  }
  idx.classes = label_names;
  std::sort(idx.classes.begin(), idx.classes.end());
  idx.classes.erase(std::unique(idx.classes.begin(), idx.classes.end()), idx.classes.end());
  // Label order (class by class, then path), as for class folders, so splits see the same shape.
  std::vector<size_t> order(idx.files.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto class_of = [&](size_t i) {
    return std::lower_bound(idx.classes.begin(), idx.classes.end(), label_names[i]) - idx.classes.begin();
  };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(class_of(a), idx.files[a]) < std::pair(class_of(b), idx.files[b]);
  });
  std::vector<std::string> files;
  for (size_t i : order) {
    files.push_back(idx.files[i]);
    idx.labels.push_back(static_cast<int32_t>(class_of(i)));
  }
  idx.files = std::move(files);
  return idx;
}

DatasetIndex open_corpus(const DatasetSpec& spec, const fs::path& dir) {
  fs::path manifest = dir / "manifest.txt";
  if (fs::exists(manifest)) return open_manifest(spec, dir, manifest);
  DatasetIndex idx;
  idx.spec = spec;
  idx.dir = dir;
  idx.files = list_images(dir, dir);
  if (idx.files.empty())
    throw DataError(fmt::format("{}: no images found (and no manifest.txt)", dir.string()));
  idx.labels.assign(idx.files.size(), -1);
  return idx;
}

}  // namespace

DatasetSpec unregistered_spec(const fs::path& folder) {
  DatasetSpec s;
  s.name = s.folder = folder.filename().string();
  s.title = "unregistered folder " + folder.string();
  return s;
}

DatasetIndex DatasetIndex::subset(const std::vector<int64_t>& indices) const {
  DatasetIndex out;
  out.spec = spec;
  out.dir = dir;
  out.classes = classes;
  for (int64_t i : indices) {
    ABLATE_CHECK(i >= 0 && static_cast<size_t>(i) < files.size(), "index {} of {}", i, files.size());
    out.files.push_back(files[i]);
    out.labels.push_back(labels[i]);
  }
  return out;
}

DatasetIndex open_dataset(const DatasetSpec& spec, const fs::path& data_root) {
  return open_dataset_dir(spec, data_root / spec.folder);
}

DatasetIndex open_dataset_dir(const DatasetSpec& spec, const fs::path& dir) {
  require_folder(spec, dir);
  DatasetIndex idx =
      spec.layout == DatasetLayout::ClassFolders ? open_class_folders(spec, dir) : open_corpus(spec, dir);
  if (spec.expected_count > 0 && static_cast<int64_t>(idx.files.size()) != spec.expected_count)
    throw DataError(fmt::format("{}: {} images, {} expects {}", dir.string(), idx.files.size(), spec.title,
                                spec.expected_count));
  return idx;
}

DatasetIndex open_dataset(std::string_view name, const fs::path& data_root) {
  return open_dataset(dataset_spec(name), data_root);
}

DatasetIndex open_folder(const fs::path& dir) {
  DatasetSpec spec = unregistered_spec(dir);
  if (!fs::is_directory(dir)) throw DataError(fmt::format("{}: not a folder", dir.string()));
  bool has_images_at_top = false;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && is_image_file(e.path())) has_images_at_top = true;
  if (fs::exists(dir / "manifest.txt") || has_images_at_top || subfolders(dir).empty()) {
    spec.layout = DatasetLayout::Corpus;
    return open_corpus(spec, dir);
  }
  return open_class_folders(spec, dir);
}

}  // namespace ablate
