// PyTorch checkpoint files (see torch_checkpoint.h): a stored-zip reader and writer, a pickle VM
// that keeps unknown objects opaque, and the state-dict extraction.
#include "methods/torch_checkpoint.h"

#include "pch/torch_pch.h"

#include <array>
#include <cstring>
#include <fstream>
#include <memory>

#include <fmt/ranges.h>

#include "harness/check.h"
#include "harness/sys_util.h"

namespace ablate {
namespace {

// ---- zip archive (stored entries only, zip64 aware) ----

uint64_t le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint32_t crc32(const char* data, size_t n, uint32_t crc = 0) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ static_cast<unsigned char>(data[i])) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

struct ZipEntry {
  uint64_t offset = 0, size = 0;  // of the data in the file
  uint32_t crc = 0;
};

class ZipReader {
 public:
  explicit ZipReader(const std::filesystem::path& file) : file_(file), in_(file, std::ios::binary) {
    if (!in_) throw DataError(fmt::format("{}: cannot open checkpoint file", file.string()));
    in_.seekg(0, std::ios::end);
    file_size_ = static_cast<uint64_t>(in_.tellg());
    read_central_directory();
  }

  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }

  // The entry's bytes, CRC-checked.
  std::string read(const std::string& name) {
    const auto it = entries_.find(name);
    if (it == entries_.end()) throw fail(fmt::format("archive entry '{}' is missing", name));
    std::string bytes = read_at(it->second.offset, it->second.size);
    if (crc32(bytes.data(), bytes.size()) != it->second.crc)
      throw fail(fmt::format("archive entry '{}' is corrupt (CRC mismatch)", name));
    return bytes;
  }

  DataError fail(const std::string& why) const {
    return DataError(fmt::format("{}: not a readable PyTorch checkpoint: {}", file_.string(), why));
  }

 private:
  std::string read_at(uint64_t offset, uint64_t size) {
    if (offset + size > file_size_ || offset + size < offset) throw fail("truncated file");
    std::string bytes(size, '\0');
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(bytes.data(), static_cast<std::streamsize>(size));
    if (!in_) throw fail("read error");
    return bytes;
  }

  // The end-of-central-directory record (and its zip64 form), then every central header.
  void read_central_directory() {
    const uint64_t tail = std::min<uint64_t>(file_size_, 22 + 65535);
    if (tail < 22) throw fail("too short for a zip archive");
    const std::string end = read_at(file_size_ - tail, tail);
    const auto* e = reinterpret_cast<const unsigned char*>(end.data());
    int64_t eocd = -1;
    for (int64_t i = static_cast<int64_t>(tail) - 22; i >= 0; --i)
      if (le(e + i, 4) == 0x06054b50) {
        eocd = i;
        break;
      }
    if (eocd < 0) {
      const bool legacy = file_size_ > 2 && e[0] == 0x80;  // a bare pickle: torch.save before 1.6
      throw fail(legacy ? "legacy (pre-1.6) torch.save format; re-save it with a current torch"
                        : "no zip end-of-central-directory record");
    }
    uint64_t count = le(e + eocd + 10, 2), cd_size = le(e + eocd + 12, 4), cd_offset = le(e + eocd + 16, 4);
    if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
      if (eocd < 20 || le(e + eocd - 20, 4) != 0x07064b50) throw fail("zip64 locator missing");
      const std::string z = read_at(le(e + eocd - 20 + 8, 8), 56);
      const auto* zp = reinterpret_cast<const unsigned char*>(z.data());
      if (le(zp, 4) != 0x06064b50) throw fail("zip64 end record missing");
      count = le(zp + 32, 8);
      cd_size = le(zp + 40, 8);
      cd_offset = le(zp + 48, 8);
    }
    const std::string cd = read_at(cd_offset, cd_size);
    const auto* p = reinterpret_cast<const unsigned char*>(cd.data());
    size_t pos = 0;
    for (uint64_t n = 0; n < count; ++n) {
      if (pos + 46 > cd.size() || le(p + pos, 4) != 0x02014b50) throw fail("malformed central directory");
      const uint64_t method = le(p + pos + 10, 2), name_len = le(p + pos + 28, 2),
                     extra_len = le(p + pos + 30, 2), comment_len = le(p + pos + 32, 2);
      ZipEntry entry;
      entry.crc = static_cast<uint32_t>(le(p + pos + 16, 4));
      uint64_t csize = le(p + pos + 20, 4), usize = le(p + pos + 24, 4), local = le(p + pos + 42, 4);
      const std::string name(cd.data() + pos + 46, name_len);
      // zip64 extra field: the 8-byte values of whichever fields were saturated, in this order.
      for (size_t x = pos + 46 + name_len; x + 4 <= pos + 46 + name_len + extra_len;) {
        const uint64_t id = le(p + x, 2), len = le(p + x + 2, 2);
        size_t v = x + 4;
        if (id == 0x0001) {
          for (uint64_t* field : {&usize, &csize, &local})
            if (*field == 0xFFFFFFFF && v + 8 <= x + 4 + len) {
              *field = le(p + v, 8);
              v += 8;
            }
        }
        x += 4 + len;
      }
      if (method != 0) throw fail(fmt::format("entry '{}' is compressed (torch.save stores entries)", name));
      if (csize != usize) throw fail(fmt::format("entry '{}': stored sizes differ", name));
      const std::string lh = read_at(local, 30);
      const auto* l = reinterpret_cast<const unsigned char*>(lh.data());
      if (le(l, 4) != 0x04034b50) throw fail(fmt::format("entry '{}': bad local header", name));
      entry.offset = local + 30 + le(l + 26, 2) + le(l + 28, 2);
      entry.size = usize;
      entries_[name] = entry;
      pos += 46 + name_len + extra_len + comment_len;
    }
  }

  std::filesystem::path file_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  std::map<std::string, ZipEntry> entries_;
};

// ---- pickle values ----

struct PyValue;
using PyRef = std::shared_ptr<PyValue>;

// A tensor named by the pickle, read from its storage entry only when asked for.
struct TensorRef {
  std::string storage_key;
  torch::ScalarType dtype = torch::kFloat32;
  int64_t storage_numel = 0, offset = 0;
  std::vector<int64_t> sizes, strides;
};

struct PyValue {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Object, Storage, Tensor };
  Kind kind = Kind::None;
  int64_t i = 0;        // Bool, Int
  double f = 0;         // Float
  std::string s;        // String, Bytes, Global ("module name"), Object (its class)
  std::vector<PyRef> items;                        // Tuple, List, Object (constructor arguments)
  std::vector<std::pair<PyRef, PyRef>> entries;    // Dict, in insertion order
  TensorRef tensor;                                // Storage (key, dtype, numel), Tensor
};

PyRef make(PyValue::Kind kind) {
  auto v = std::make_shared<PyValue>();
  v->kind = kind;
  return v;
}

PyRef make_int(int64_t i) {
  auto v = make(PyValue::Kind::Int);
  v->i = i;
  return v;
}

PyRef make_string(PyValue::Kind kind, std::string s) {
  auto v = make(kind);
  v->s = std::move(s);
  return v;
}

struct StorageType {
  const char* name;
  torch::ScalarType dtype;
};

constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", torch::kFloat32},  {"DoubleStorage", torch::kFloat64}, {"HalfStorage", torch::kFloat16},
    {"BFloat16Storage", torch::kBFloat16}, {"LongStorage", torch::kInt64},  {"IntStorage", torch::kInt32},
    {"ShortStorage", torch::kInt16},    {"CharStorage", torch::kInt8},      {"ByteStorage", torch::kUInt8},
    {"BoolStorage", torch::kBool},      {"UntypedStorage", torch::kUInt8},
};

// The pickle VM. Globals become Global values; calling one (REDUCE / NEWOBJ) rebuilds tensors and
// OrderedDicts and leaves everything else an opaque Object.
class Unpickler {
 public:
  Unpickler(std::string bytes, const ZipReader& zip) : bytes_(std::move(bytes)), zip_(zip) {}

  PyRef load() {
    while (true) {
      const auto op = static_cast<unsigned char>(next(1)[0]);
      if (op == '.') {
        if (stack_.size() != 1) throw zip_.fail("data.pkl: unbalanced stack at STOP");
        return stack_.back();
      }
      step(op);
    }
  }

 private:
  using K = PyValue::Kind;

  const char* next(size_t n) {
    if (pos_ + n > bytes_.size()) throw zip_.fail("data.pkl ends early");
    const char* p = bytes_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint64_t next_le(int n) { return le(reinterpret_cast<const unsigned char*>(next(n)), n); }
  std::string next_line() {
    const auto end = bytes_.find('\n', pos_);
    if (end == std::string::npos) throw zip_.fail("data.pkl ends early");
    std::string line = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return line;
  }

  PyRef pop() {
    if (stack_.empty() || stack_.size() <= floor()) throw zip_.fail("data.pkl: pop from an empty stack");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Everything above the last MARK, which is removed.
  std::vector<PyRef> pop_mark() {
    if (marks_.empty()) throw zip_.fail("data.pkl: no MARK");
    std::vector<PyRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  PyRef& top() {
    if (stack_.empty()) throw zip_.fail("data.pkl: empty stack");
    return stack_.back();
  }

  PyRef tuple(std::vector<PyRef> items) {
    auto t = make(K::Tuple);
    t->items = std::move(items);
    return t;
  }

  void set_items(const PyRef& dict, const std::vector<PyRef>& kv) {
    if (kv.size() % 2) throw zip_.fail("data.pkl: odd number of dict items");
    if (dict->kind != K::Dict) return;  // e.g. a custom mapping class: opaque
    for (size_t i = 0; i < kv.size(); i += 2) dict->entries.emplace_back(kv[i], kv[i + 1]);
  }

  void append(const PyRef& list, const std::vector<PyRef>& items) {
    if (list->kind == K::List) list->items.insert(list->items.end(), items.begin(), items.end());
  }

  // The persistent id of a storage: ('storage', <Global torch.XStorage>, key, location, numel).
  PyRef persistent_load(const PyRef& pid) {
    if (pid->kind != K::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage" ||
        pid->items[1]->kind != K::Global || pid->items[2]->kind != K::String || pid->items[4]->kind != K::Int)
      throw zip_.fail("data.pkl: unknown persistent id (only torch storages are supported)");
    auto storage = make(K::Storage);
    storage->tensor.storage_key = pid->items[2]->s;
    storage->tensor.storage_numel = pid->items[4]->i;
    const std::string& type = pid->items[1]->s;
    const auto name = type.substr(type.rfind(' ') + 1);
    bool known = false;
    for (const auto& st : kStorageTypes)
      if (name == st.name) {
        storage->tensor.dtype = st.dtype;
        known = true;
      }
    if (!known) throw zip_.fail(fmt::format("data.pkl: unsupported storage type '{}'", type));
    return storage;
  }

  std::vector<int64_t> ints(const PyRef& t, const char* what) {
    if (t->kind != K::Tuple && t->kind != K::List) throw zip_.fail(fmt::format("data.pkl: tensor {} is not a tuple", what));
    std::vector<int64_t> out;
    for (const auto& v : t->items) {
      if (v->kind != K::Int) throw zip_.fail(fmt::format("data.pkl: tensor {} holds a non-integer", what));
      out.push_back(v->i);
    }
    return out;
  }

  // Calls a global: the tensor rebuild functions and OrderedDict are understood, the rest is opaque.
  PyRef call(const PyRef& callable, const PyRef& args) {
    const std::string& name = callable->s;
    const auto& a = args->items;
    if (callable->kind == K::Global && name == "collections OrderedDict") return make(K::Dict);
    if (callable->kind == K::Global &&
        (name == "torch._utils _rebuild_tensor_v2" || name == "torch._utils _rebuild_tensor")) {
      if (a.size() < 4 || a[0]->kind != K::Storage || a[1]->kind != K::Int)
        throw zip_.fail(fmt::format("data.pkl: unexpected arguments to {}", name));
      auto t = make(K::Tensor);
      t->tensor = a[0]->tensor;
      t->tensor.offset = a[1]->i;
      t->tensor.sizes = ints(a[2], "size");
      t->tensor.strides = ints(a[3], "stride");
      if (t->tensor.sizes.size() != t->tensor.strides.size())
        throw zip_.fail("data.pkl: tensor size and stride differ in length");
      return t;
    }
    // nn.Parameter(data, requires_grad, hooks) and tensor subclasses (func, type, args, state).
    if (callable->kind == K::Global && name.rfind("torch._utils _rebuild_parameter", 0) == 0 && !a.empty())
      return a[0];
    if (callable->kind == K::Global && name == "torch._tensor _rebuild_from_type_v2" && a.size() >= 3)
      return call(a[0], a[2]);
    auto obj = make_string(K::Object, callable->s);
    obj->items = a;
    return obj;
  }

  void memo_put(uint64_t key) { memo_[key] = top(); }
  PyRef memo_get(uint64_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) throw zip_.fail(fmt::format("data.pkl: memo key {} unset", key));
    return it->second;
  }

  void push_bytes(K kind, uint64_t n) { stack_.push_back(make_string(kind, std::string(next(n), n))); }

  // One opcode. The dispatch goes by family, each a switch that answers whether the opcode is one of
  // its own; an opcode of none of them is unsupported.
  void step(unsigned char op) {
    if (!stack_op(op) && !number_op(op) && !string_op(op) && !container_op(op) && !memo_op(op) && !call_op(op))
      throw zip_.fail(fmt::format("data.pkl: unsupported pickle opcode 0x{:02x} at byte {}", op, pos_ - 1));
  }

  // Framing, marks and plain stack manipulation.
  bool stack_op(unsigned char op) {
    switch (op) {
      case 0x80: next(1); return true;     // PROTO
      case 0x95: next(8); return true;     // FRAME
      case '(': marks_.push_back(stack_.size()); return true;  // MARK
      case '0': pop(); return true;        // POP
      case '1': pop_mark(); return true;   // POP_MARK
      case '2': stack_.push_back(top()); return true;  // DUP
      case 'N': stack_.push_back(make(K::None)); return true;
      default: return false;
    }
  }

  // Booleans, integers and floats, binary and text.
  bool number_op(unsigned char op) {
    switch (op) {
      case 0x88: case 0x89: {        // NEWTRUE, NEWFALSE
        auto b = make(K::Bool);
        b->i = op == 0x88;
        stack_.push_back(b);
        return true;
      }
      case 'J': stack_.push_back(make_int(static_cast<int32_t>(next_le(4)))); return true;  // BININT
      case 'K': stack_.push_back(make_int(static_cast<int64_t>(next_le(1)))); return true;  // BININT1
      case 'M': stack_.push_back(make_int(static_cast<int64_t>(next_le(2)))); return true;  // BININT2
      case 0x8a: case 0x8b: {        // LONG1, LONG4: little-endian two's complement
        const uint64_t n = next_le(op == 0x8a ? 1 : 4);
        if (n > 8) throw zip_.fail("data.pkl: integer wider than 64 bits");
        const auto* p = reinterpret_cast<const unsigned char*>(next(n));
        uint64_t v = n ? le(p, static_cast<int>(n)) : 0;
        if (n && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);
        stack_.push_back(make_int(static_cast<int64_t>(v)));
        return true;
      }
      case 'I': case 'L': {          // INT, LONG (text)
        std::string line = next_line();
        if (!line.empty() && line.back() == 'L') line.pop_back();
        if (line == "01" || line == "00") {
          auto b = make(K::Bool);
          b->i = line == "01";
          stack_.push_back(b);
        } else {
          stack_.push_back(make_int(std::stoll(line)));
        }
        return true;
      }
      case 'G': {                    // BINFLOAT: big-endian double
        const auto* p = reinterpret_cast<const unsigned char*>(next(8));
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
        auto f = make(K::Float);
        std::memcpy(&f->f, &bits, 8);
        stack_.push_back(f);
        return true;
      }
      case 'F': {
        auto f = make(K::Float);
        f->f = std::stod(next_line());
        stack_.push_back(f);
        return true;
      }
      default: return false;
    }
  }

  // Strings and bytes, each opcode with the width of its length prefix.
  bool string_op(unsigned char op) {
    switch (op) {
      case 'X': push_bytes(K::String, next_le(4)); return true;     // BINUNICODE
      case 0x8c: push_bytes(K::String, next_le(1)); return true;    // SHORT_BINUNICODE
      case 0x8d: push_bytes(K::String, next_le(8)); return true;    // BINUNICODE8
      case 'T': push_bytes(K::String, next_le(4)); return true;     // BINSTRING
      case 'U': push_bytes(K::String, next_le(1)); return true;     // SHORT_BINSTRING
      case 'B': push_bytes(K::Bytes, next_le(4)); return true;      // BINBYTES
      case 'C': push_bytes(K::Bytes, next_le(1)); return true;      // SHORT_BINBYTES
      case 0x8e: case 0x96: push_bytes(K::Bytes, next_le(8)); return true;  // BINBYTES8, BYTEARRAY8
      default: return false;
    }
  }

  // Tuples, lists, sets and dicts: building them and adding to them.
  bool container_op(unsigned char op) {
    switch (op) {
      case ')': stack_.push_back(tuple({})); return true;           // EMPTY_TUPLE
      case 't': stack_.push_back(tuple(pop_mark())); return true;   // TUPLE
      case 0x85: case 0x86: case 0x87: {                     // TUPLE1..3
        std::vector<PyRef> items(op - 0x84);
        for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
        stack_.push_back(tuple(std::move(items)));
        return true;
      }
      case ']': case 0x8f: stack_.push_back(make(K::List)); return true;  // EMPTY_LIST, EMPTY_SET
      case 'l': case 0x91: {                                  // LIST, FROZENSET
        auto l = make(K::List);
        l->items = pop_mark();
        stack_.push_back(l);
        return true;
      }
      case 'a': { auto v = pop(); append(top(), {v}); return true; }       // APPEND
      case 'e': case 0x90: { auto v = pop_mark(); append(top(), v); return true; }  // APPENDS, ADDITEMS
      case '}': stack_.push_back(make(K::Dict)); return true;       // EMPTY_DICT
      case 'd': {                                             // DICT
        auto d = make(K::Dict);
        set_items(d, pop_mark());
        stack_.push_back(d);
        return true;
      }
      case 's': { auto v = pop(); auto k = pop(); set_items(top(), {k, v}); return true; }  // SETITEM
      case 'u': { auto kv = pop_mark(); set_items(top(), kv); return true; }              // SETITEMS
      default: return false;
    }
  }

  // The memo: storing the top of the stack and fetching it back.
  bool memo_op(unsigned char op) {
    switch (op) {
      case 'p': memo_put(std::stoull(next_line())); return true;    // PUT
      case 'q': memo_put(next_le(1)); return true;                  // BINPUT
      case 'r': memo_put(next_le(4)); return true;                  // LONG_BINPUT
      case 0x94: memo_put(memo_.size()); return true;               // MEMOIZE
      case 'g': stack_.push_back(memo_get(std::stoull(next_line()))); return true;  // GET
      case 'h': stack_.push_back(memo_get(next_le(1))); return true;                // BINGET
      case 'j': stack_.push_back(memo_get(next_le(4))); return true;                // LONG_BINGET
      default: return false;
    }
  }

  // Globals, calling them, object state and persistent ids (the tensors' storages).
  bool call_op(unsigned char op) {
    switch (op) {
      case 'c': {                                             // GLOBAL "module\nname\n"
        std::string module = next_line();
        stack_.push_back(make_string(K::Global, module + " " + next_line()));
        return true;
      }
      case 0x93: {                                            // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        stack_.push_back(make_string(K::Global, module->s + " " + name->s));
        return true;
      }
      case 'R': { auto args = pop(); auto f = pop(); stack_.push_back(call(f, args)); return true; }  // REDUCE
      case 0x81: { auto args = pop(); auto cls = pop(); stack_.push_back(call(cls, args)); return true; }  // NEWOBJ
      case 0x92: {                                            // NEWOBJ_EX
        pop();  // kwargs
        auto args = pop();
        auto cls = pop();
        stack_.push_back(call(cls, args));
        return true;
      }
      case 'b': pop(); return true;  // BUILD: object state (an OrderedDict's _metadata, a Namespace's fields)
      case 'Q': stack_.push_back(persistent_load(pop())); return true;  // BINPERSID
      default: return false;
    }
  }

  std::string bytes_;
  size_t pos_ = 0;
  const ZipReader& zip_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyRef> memo_;
};

// Reads a tensor's storage from `<archive>/data/<key>` and views it with the pickled geometry.
torch::Tensor materialize(ZipReader& zip, const std::string& archive, const std::string& name, const TensorRef& t) {
  const int64_t elem = static_cast<int64_t>(c10::elementSize(t.dtype));
  std::string bytes = zip.read(archive + "/data/" + t.storage_key);
  const int64_t numel = static_cast<int64_t>(bytes.size()) / elem;
  int64_t extent = t.offset;  // last element the view touches
  bool empty = false;
  for (size_t d = 0; d < t.sizes.size(); ++d) {
    if (t.sizes[d] == 0) empty = true;
    extent += (t.sizes[d] - 1) * t.strides[d];
  }
  if (numel < t.storage_numel || (!empty && extent >= numel) || t.offset < 0)
    throw zip.fail(fmt::format("tensor '{}': storage data/{} is too small for its size and stride", name,
                               t.storage_key));
  auto storage = torch::empty({numel}, torch::TensorOptions().dtype(t.dtype));
  std::memcpy(storage.data_ptr(), bytes.data(), static_cast<size_t>(numel * elem));
  return storage.as_strided(t.sizes, t.strides, t.offset).contiguous().clone();
}

std::string key_text(const PyRef& k) {
  return k->kind == PyValue::Kind::String ? k->s : fmt::format("<non-string key {}>", static_cast<int>(k->kind));
}

const PyRef* dict_get(const PyValue& dict, const std::string& key) {
  for (const auto& [k, v] : dict.entries)
    if (k->kind == PyValue::Kind::String && k->s == key) return &v;
  return nullptr;
}

bool all_tensors(const PyValue& dict) {
  if (dict.entries.empty()) return false;
  for (const auto& [k, v] : dict.entries)
    if (v->kind != PyValue::Kind::Tensor) return false;
  return true;
}

// ---- writing ----

class PickleWriter {
 public:
  void op(unsigned char c) { out_.push_back(static_cast<char>(c)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  void str(const std::string& s) {
    op('X');
    u32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void global(const std::string& module, const std::string& name) { out_ += "c" + module + "\n" + name + "\n"; }
  void integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
      op(0x8a);
      op(8);
      for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xFF));
    }
  }
  void int_tuple(c10::IntArrayRef values) {
    op('(');
    for (const auto v : values) integer(v);
    op('t');
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

const char* storage_type_of(torch::ScalarType dtype) {
  for (const auto& st : kStorageTypes)
    if (st.dtype == dtype && std::strcmp(st.name, "UntypedStorage") != 0) return st.name;
  ABLATE_CHECK(false, "no torch storage type for dtype {}", c10::toString(dtype));
  return "";
}

// {top_key: OrderedDict(name -> tensor)}, storage i holding the i-th tensor in name order.
std::string pickle_state_dict(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              const std::string& top_key) {
  PickleWriter w;
  w.op(0x80);
  w.op(2);
  w.op('}');
  w.str(top_key);
  w.global("collections", "OrderedDict");
  w.op(')');
  w.op('R');
  w.op('(');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i].second;
    w.str(tensors[i].first);
    w.global("torch._utils", "_rebuild_tensor_v2");
    w.op('(');
    w.op('(');
    w.str("storage");
    w.global("torch", storage_type_of(t.scalar_type()));
    w.str(std::to_string(i));
    w.str("cpu");
    w.integer(t.numel());
    w.op('t');
    w.op('Q');
    w.integer(0);
    w.int_tuple(t.sizes());
    w.int_tuple(t.strides());
    w.op(0x89);
    w.global("collections", "OrderedDict");
    w.op(')');
    w.op('R');
    w.op('t');
    w.op('R');
  }
  w.op('u');
  w.op('s');
  w.op('.');
  return std::move(w.bytes());
}

// A stored zip archive the way PyTorch's writer lays it out: each entry's data 64-byte aligned
// (padding in the local header's extra field), zip64 records only when offsets need them.
class ZipWriter {
 public:
  void add(const std::string& name, const char* data, size_t size) {
    const uint64_t local = out_.size();
    const size_t header = 30 + name.size();
    const size_t pad = (64 - (local + header + 4) % 64) % 64;  // +4: the padding field's own header
    put(0x04034b50, 4);
    put(20, 2);  // version needed
    put(0, 2);   // flags
    put(0, 2);   // stored
    put(0, 4);   // time, date
    const uint32_t crc = crc32(data, size);
    put(crc, 4);
    put(size, 4);
    put(size, 4);
    put(name.size(), 2);
    put(4 + pad, 2);
    out_ += name;
    put(0x5a46, 2);  // "FZ": PyTorch's padding field id
    put(pad, 2);
    out_.append(pad, 'Z');
    out_.append(data, size);
    ABLATE_CHECK(size < 0xFFFFFFFFu, "zip entry '{}' over 4 GiB", name);
    entries_.push_back({name, local, size, crc});
  }
  void add(const std::string& name, const std::string& text) { add(name, text.data(), text.size()); }

  std::string finish() {
    const uint64_t cd_offset = out_.size();
    for (const auto& e : entries_) {
      const bool z64 = e.local >= 0xFFFFFFFFu;
      put(0x02014b50, 4);
      put(z64 ? 45 : 20, 2);  // version made by
      put(z64 ? 45 : 20, 2);  // version needed
      put(0, 2);
      put(0, 2);
      put(0, 4);
      put(e.crc, 4);
      put(e.size, 4);
      put(e.size, 4);
      put(e.name.size(), 2);
      put(z64 ? 12 : 0, 2);
      put(0, 2);  // comment
      put(0, 2);  // disk
      put(0, 2);  // internal attributes
      put(0, 4);  // external attributes
      put(z64 ? 0xFFFFFFFFu : e.local, 4);
      out_ += e.name;
      if (z64) {
        put(0x0001, 2);
        put(8, 2);
        put(e.local, 8);
      }
    }
    const uint64_t cd_size = out_.size() - cd_offset;
    const bool z64 = cd_offset >= 0xFFFFFFFFu || entries_.size() >= 0xFFFF;
    if (z64) {
      const uint64_t z_offset = out_.size();
      put(0x06064b50, 4);
      put(44, 8);
      put(45, 2);
      put(45, 2);
      put(0, 4);
      put(0, 4);
      put(entries_.size(), 8);
      put(entries_.size(), 8);
      put(cd_size, 8);
      put(cd_offset, 8);
      put(0x07064b50, 4);
      put(0, 4);
      put(z_offset, 8);
      put(1, 4);
    }
    put(0x06054b50, 4);
    put(0, 2);
    put(0, 2);
    put(z64 ? 0xFFFF : entries_.size(), 2);
    put(z64 ? 0xFFFF : entries_.size(), 2);
    put(z64 ? 0xFFFFFFFFu : cd_size, 4);
    put(z64 ? 0xFFFFFFFFu : cd_offset, 4);
    put(0, 2);
    return std::move(out_);
  }

 private:
  struct Entry {
    std::string name;
    uint64_t local, size;
    uint32_t crc;
  };
  void put(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
  std::string out_;
  std::vector<Entry> entries_;
};

}  // namespace

TorchCheckpoint read_torch_checkpoint(const std::filesystem::path& file) {
  ZipReader zip(file);
  std::string archive;
  for (const auto& [name, entry] : zip.entries()) {
    const auto slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash) == "/data.pkl") archive = name.substr(0, slash);
  }
  if (archive.empty()) throw zip.fail("no <archive>/data.pkl entry");
  if (zip.has(archive + "/byteorder") && zip.read(archive + "/byteorder") != "little")
    throw zip.fail("big-endian checkpoints are not supported");

  const PyRef root = Unpickler(zip.read(archive + "/data.pkl"), zip).load();
  if (root->kind != PyValue::Kind::Dict) throw zip.fail("the saved object is not a dict");

  TorchCheckpoint out;
  const PyValue* sd = nullptr;
  for (const char* key : {"model", "state_dict"}) {
    const PyRef* v = dict_get(*root, key);
    if (v && (*v)->kind == PyValue::Kind::Dict) {
      sd = v->get();
      out.state_dict_key = key;
      break;
    }
  }
  if (!sd && all_tensors(*root)) sd = root.get();
  if (!sd) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : root->entries) keys.push_back(key_text(k));
    throw zip.fail(fmt::format("no state dict: no 'model' or 'state_dict' dict and not a dict of tensors "
                               "(top-level keys: {})", fmt::join(keys, ", ")));
  }
  for (const auto& [k, v] : root->entries)
    if (!out.state_dict_key.empty() && key_text(k) != out.state_dict_key) out.other_entries.push_back(key_text(k));
  for (const auto& [k, v] : sd->entries) {
    const std::string name = key_text(k);
    if (v->kind == PyValue::Kind::Tensor)
      out.state_dict[name] = materialize(zip, archive, name, v->tensor);
    else
      out.skipped.push_back(name);
  }
  return out;
}

std::map<std::string, torch::Tensor> read_torch_state_dict(const std::filesystem::path& file) {
  return read_torch_checkpoint(file).state_dict;
}

void write_torch_state_dict(const std::filesystem::path& file, const std::map<std::string, torch::Tensor>& tensors,
                            const std::string& top_key) {
  std::vector<std::pair<std::string, torch::Tensor>> ordered;
  for (const auto& [name, t] : tensors) ordered.emplace_back(name, t.detach().to(torch::kCPU).contiguous());
  const std::string archive = file.stem().string().empty() ? "archive" : file.stem().string();
  ZipWriter zip;
  zip.add(archive + "/data.pkl", pickle_state_dict(ordered, top_key));
  zip.add(archive + "/.format_version", "1");
  zip.add(archive + "/.storage_alignment", "64");
  zip.add(archive + "/byteorder", "little");
  for (size_t i = 0; i < ordered.size(); ++i) {
    const auto& t = ordered[i].second;
    zip.add(archive + "/data/" + std::to_string(i), static_cast<const char*>(t.data_ptr()), t.nbytes());
  }
  zip.add(archive + "/version", "3\n");
  write_file_atomically(file, zip.finish());
}

}  // namespace ablate
