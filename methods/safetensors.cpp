// Reading and writing `.safetensors` files; the format contract is in safetensors.h.
#include "methods/safetensors.h"

#include "pch/torch_pch.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <vector>

#include <fmt/ranges.h>  // fmt::join (in fmt/ranges.h since fmt 11, the one LibTorch bundles)
#include <nlohmann/json.hpp>

#include "harness/check.h"
#include "harness/sys_util.h"

namespace ablate {

namespace {

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};

constexpr DtypeName kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
    {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
    {"I16", torch::kInt16},   {"I8", torch::kInt8},     {"U8", torch::kUInt8},
    {"BOOL", torch::kBool},
};

torch::ScalarType dtype_of(const std::string& name, const std::filesystem::path& file,
                           const std::string& tensor) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  throw DataError(fmt::format("{}: tensor '{}': unsupported dtype '{}' (F64, F32, F16, BF16, I64, I32, "
                              "I16, I8, U8, BOOL)", file.string(), tensor, name));
}

const char* name_of(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return d.name;
  ABLATE_CHECK(false, "safetensors cannot hold dtype {}", c10::toString(type));
  return "";
}

uint64_t read_le_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

SafetensorsFile read_safetensors(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: cannot open safetensors file", file.string()));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto fail = [&](const std::string& why) {
    return DataError(fmt::format("{}: not a valid safetensors file: {}", file.string(), why));
  };
  if (bytes.size() < 8) throw fail("shorter than its 8-byte header length");
  const uint64_t header_len = read_le_u64(reinterpret_cast<const unsigned char*>(bytes.data()));
  if (header_len > bytes.size() - 8) throw fail(fmt::format("header length {} exceeds the file", header_len));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<int64_t>(header_len));
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("header JSON: ") + e.what());
  }
  if (!header.is_object()) throw fail("header is not a JSON object");
  const char* data = bytes.data() + 8 + header_len;
  const uint64_t data_len = bytes.size() - 8 - header_len;

  SafetensorsFile out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, v] : entry.items())
        if (v.is_string()) out.metadata[k] = v.get<std::string>();
      continue;
    }
    try {
      const torch::ScalarType type = dtype_of(entry.at("dtype").get<std::string>(), file, name);
      const auto shape = entry.at("shape").get<std::vector<int64_t>>();
      const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_len)
        throw fail(fmt::format("tensor '{}': data_offsets outside the data section", name));
      auto t = torch::empty(shape, torch::TensorOptions().dtype(type));
      const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
      if (nbytes != offsets[1] - offsets[0])
        throw fail(fmt::format("tensor '{}': {} bytes for shape {} but offsets span {}", name, nbytes,
                               fmt::join(shape, "x"), offsets[1] - offsets[0]));
      if (nbytes > 0) std::memcpy(t.data_ptr(), data + offsets[0], nbytes);
      out.tensors.emplace(name, std::move(t));
    } catch (const nlohmann::json::exception& e) {
      throw fail(fmt::format("tensor '{}': {}", name, e.what()));
    }
  }
  return out;
}

void write_safetensors(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  struct Entry {
    std::string name;
    torch::Tensor t;
  };
  std::vector<Entry> order;
  for (const auto& [name, t] : tensors) order.push_back({name, t.detach().to(torch::kCPU).contiguous()});
  // The reference writer's order: larger elements first (alignment), then by name.
  std::stable_sort(order.begin(), order.end(), [](const Entry& a, const Entry& b) {
    if (a.t.element_size() != b.t.element_size()) return a.t.element_size() > b.t.element_size();
    return a.name < b.name;
  });

  // nlohmann::ordered_json keeps insertion order, so the header lists tensors by offset.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& e : order) {
    const uint64_t nbytes = static_cast<uint64_t>(e.t.numel()) * e.t.element_size();
    header[e.name] = {{"dtype", name_of(e.t.scalar_type())},
                      {"shape", e.t.sizes().vec()},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');

  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  bytes += json;
  bytes.reserve(bytes.size() + offset);
  for (const auto& e : order)
    bytes.append(static_cast<const char*>(e.t.data_ptr()), e.t.numel() * e.t.element_size());
  write_file_atomically(file, bytes);
}

}  // namespace ablate
