// Reads and writes safetensors files and sharded checkpoints (format in safetensors.hpp).
#include "models/weights/safetensors.hpp"

#include "models/weights/model_files.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <set>

namespace pedagogy::models {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using json = nlohmann::json;

struct dtype_info {
  std::string_view name;
  at::ScalarType type;
  size_t bytes;
};

constexpr dtype_info dtypes[] = {
  {"F64", at::kDouble, 8},    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},
  {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8},  {"I32", at::kInt, 4},
  {"I16", at::kShort, 2},     {"I8", at::kChar, 1},   {"U8", at::kByte, 1},
  {"BOOL", at::kBool, 1},
};

const dtype_info* find_dtype(std::string_view name) {
  for (const auto& d : dtypes)
    if (d.name == name)
      return &d;
  return nullptr;
}

const dtype_info& dtype_of(at::ScalarType type, const std::string& tensor) {
  for (const auto& d : dtypes)
    if (d.type == type)
      return d;
  throw input_error(tensor, fmt::format("dtype {} cannot be stored in safetensors", toString(type)),
                    "convert it to float32, float16, bfloat16 or an integer type first");
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

const std::string truncated_hint = "the file is truncated or corrupted: copy or save it again";

// Reads one header entry; `where` is the file, `name` the tensor.
tensor_entry parse_entry(const std::string& name, const json& value, const std::string& where) {
  auto fail = [&](const std::string& problem) -> void {
    throw input_error(where, fmt::format("tensor '{}': {}", name, problem),
                      "each tensor needs \"dtype\", \"shape\" and \"data_offsets\"; " +
                        truncated_hint);
  };
  if (!value.is_object())
    fail("its header entry is not a JSON object");
  tensor_entry entry;
  entry.name = name;
  auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string())
    fail("\"dtype\" is missing or not a string");
  entry.dtype = dtype->get<std::string>();
  if (find_dtype(entry.dtype) == nullptr)
    throw input_error(where, fmt::format("tensor '{}': unknown dtype '{}'", name, entry.dtype),
                      "supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL");
  auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array())
    fail("\"shape\" is missing or not an array");
  for (const auto& dim : *shape) {
    if (!dim.is_number_integer() || dim.get<int64_t>() < 0)
      fail(fmt::format("\"shape\" {} holds something other than a non-negative integer",
                       shape->dump()));
    entry.shape.push_back(dim.get<int64_t>());
  }
  auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
    fail("\"data_offsets\" must be two non-negative integers [begin, end]");
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.end < entry.begin)
    fail(fmt::format("\"data_offsets\" [{}, {}] end before they begin", entry.begin, entry.end));

  // dtype x shape must account for exactly the bytes the offsets span.
  uint64_t bytes = find_dtype(entry.dtype)->bytes;
  for (int64_t dim : entry.shape) {
    if (dim != 0 && bytes > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(dim))
      fail(fmt::format("shape {} is too large", shape_text(entry.shape)));
    bytes *= static_cast<uint64_t>(dim);
  }
  if (bytes != entry.end - entry.begin)
    throw input_error(where,
                      fmt::format("tensor '{}': {} of shape {} needs {} bytes, but its offsets "
                                  "[{}, {}] span {}",
                                  name, entry.dtype, shape_text(entry.shape), bytes, entry.begin,
                                  entry.end, entry.end - entry.begin),
                      truncated_hint);
  return entry;
}

// The data buffer must be covered exactly: no overlap, no hole, nothing past its end.
void check_layout(std::vector<tensor_entry>& tensors, uint64_t data_bytes,
                  const std::string& where) {
  for (const auto& t : tensors)
    if (t.end > data_bytes)
      throw input_error(where,
                        fmt::format("tensor '{}' ends at byte {} of the data, but the file holds "
                                    "only {} data bytes",
                                    t.name, t.end, data_bytes),
                        truncated_hint);
  std::sort(tensors.begin(), tensors.end(), [](const tensor_entry& a, const tensor_entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (t.begin < covered)
      throw input_error(where,
                        fmt::format("tensor '{}' [{}, {}] overlaps tensor '{}'", t.name, t.begin,
                                    t.end, tensors[i - 1].name),
                        truncated_hint);
    if (t.begin > covered)
      throw input_error(where,
                        fmt::format("{} unused bytes lie before tensor '{}' (data byte {})",
                                    t.begin - covered, t.name, covered),
                        truncated_hint);
    covered = t.end;
  }
  if (covered != data_bytes)
    throw input_error(where,
                      fmt::format("{} bytes follow the last tensor's data", data_bytes - covered),
                      truncated_hint);
}

// Writes the file through runtime/files' checked atomic writer (temporary file, fsync, rename):
// an interrupted or failed save keeps the previous file.
void write_atomically(const std::filesystem::path& path, const std::string& header,
                      const std::vector<at::Tensor>& payload) {
  uint64_t length = header.size();
  char prefix[8];
  std::memcpy(prefix, &length, 8);
  std::vector<std::string_view> pieces = {std::string_view(prefix, 8), header};
  for (const auto& t : payload)
    pieces.emplace_back(static_cast<const char*>(t.data_ptr()),
                        static_cast<size_t>(t.numel() * t.element_size()));
  files::write_atomically(path, pieces);
}

} // namespace

// ---- parsing -----------------------------------------------------------------------------------

safetensors_header parse_header(std::string_view bytes, uint64_t file_size,
                                const std::string& where) {
  if (file_size < 8 || bytes.size() < 8)
    throw input_error(where,
                      fmt::format("{} bytes are too few for a safetensors file (the header length "
                                  "alone takes 8)",
                                  file_size),
                      truncated_hint);
  uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  if (length > max_header_bytes)
    throw input_error(where,
                      fmt::format("the header claims {} bytes, more than the {} byte limit", length,
                                  max_header_bytes),
                      "this is not a safetensors file, or its first 8 bytes are corrupted");
  if (8 + length > file_size)
    throw input_error(where,
                      fmt::format("the header claims {} bytes, but the file has only {} after the "
                                  "length",
                                  length, file_size - 8),
                      truncated_hint);
  PEDAGOGY_CHECK(bytes.size() >= 8 + length, "parse_header needs the whole header ({} bytes)",
                 8 + length);

  json root;
  try {
    root = json::parse(bytes.substr(8, length));
  } catch (const json::parse_error& e) {
    throw input_error(where, fmt::format("the header is not valid JSON: {}", e.what()),
                      truncated_hint);
  }
  if (!root.is_object())
    throw input_error(where, "the header is not a JSON object", truncated_hint);

  safetensors_header header;
  header.data_offset = 8 + length;
  for (const auto& [name, value] : root.items()) {
    if (name == "__metadata__") {
      if (!value.is_object())
        throw input_error(where, "\"__metadata__\" is not a JSON object", truncated_hint);
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string())
          throw input_error(where, fmt::format("metadata '{}' is not a string", key),
                            "safetensors metadata maps strings to strings");
        header.metadata[key] = text.get<std::string>();
      }
      continue;
    }
    header.tensors.push_back(parse_entry(name, value, where));
  }
  check_layout(header.tensors, file_size - header.data_offset, where);
  return header;
}

// ---- one mapped file ---------------------------------------------------------------------------

struct safetensors_file::mapping {
  void* base = nullptr;
  size_t size = 0;
  ~mapping() {
    if (base != nullptr)
      ::munmap(base, size);
  }
};

safetensors_file safetensors_file::open(const std::filesystem::path& path) {
  const std::string where = path.string();
  // Checked before opening: opening a FIFO blocks until someone writes to it.
  require_regular_file(path, "point at a .safetensors file");
  // O_NONBLOCK still keeps a FIFO put in the file's place since the check from blocking the open.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    throw input_error(where, fmt::format("cannot open: {}", std::strerror(errno)),
                      "check the path and its permissions");
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw input_error(where, "not a regular file", "point at a .safetensors file");
  }
  auto map = std::make_shared<mapping>();
  map->size = static_cast<size_t>(info.st_size);
  if (map->size > 0) {
    map->base = ::mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map->base == MAP_FAILED) {
      map->base = nullptr;
      ::close(fd);
      throw input_error(where, fmt::format("cannot map the file: {}", std::strerror(errno)),
                        "check the free address space and memory limits");
    }
  }
  ::close(fd);

  safetensors_file file;
  file.path_ = path;
  std::string_view bytes(static_cast<const char*>(map->base), map->size);
  file.header_ = parse_header(bytes, map->size, where);
  for (size_t i = 0; i < file.header_.tensors.size(); ++i)
    file.index_[file.header_.tensors[i].name] = i;
  file.map_ = std::move(map);
  return file;
}

bool safetensors_file::contains(const std::string& name) const {
  return index_.count(name) != 0;
}

at::Tensor safetensors_file::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end())
    throw input_error(path_.string(), fmt::format("no tensor named '{}'", name),
                      "the checkpoint does not match the model's architecture");
  const tensor_entry& entry = header_.tensors[it->second];
  const dtype_info& dtype = *find_dtype(entry.dtype);
  auto options = at::TensorOptions().dtype(dtype.type);
  if (entry.end == entry.begin)
    return at::empty(entry.shape, options);
  char* data = static_cast<char*>(map_->base) + header_.data_offset + entry.begin;
  if (reinterpret_cast<uintptr_t>(data) % dtype.bytes != 0) {
    // Writers pad the header to 8 bytes; copy the rare file whose data is misaligned.
    at::Tensor copy = at::empty(entry.shape, options);
    std::memcpy(copy.data_ptr(), data, entry.end - entry.begin);
    return copy;
  }
  auto keep_alive = map_;
  return at::from_blob(
    data, entry.shape, [keep_alive](void*) mutable { keep_alive.reset(); }, options);
}

// ---- a model directory -------------------------------------------------------------------------

checkpoint_reader checkpoint_reader::open(const std::filesystem::path& path) {
  checkpoint_reader reader;
  reader.path_ = path;
  auto add_file = [&](const std::filesystem::path& file) {
    reader.files_.push_back(safetensors_file::open(file));
    for (const auto& t : reader.files_.back().header().tensors) {
      if (!reader.owner_.emplace(t.name, reader.files_.size() - 1).second)
        throw input_error(file.string(), fmt::format("tensor '{}' is stored twice", t.name),
                          "each tensor must live in exactly one shard");
    }
  };

  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    add_file(path);
    return reader;
  }
  const auto index_path = path / "model.safetensors.index.json";
  const auto single_path = path / "model.safetensors";
  if (std::filesystem::exists(index_path, ec)) {
    json index;
    const std::string text =
      read_regular_file(index_path, "a shard index is the model.safetensors.index.json file");
    try {
      index = json::parse(text);
    } catch (const json::exception& e) {
      throw input_error(index_path.string(), fmt::format("not valid JSON: {}", e.what()),
                        "save the checkpoint again");
    }
    auto map = index.find("weight_map");
    if (!index.is_object() || map == index.end() || !map->is_object())
      throw input_error(index_path.string(), "has no \"weight_map\" object",
                        "a shard index maps every tensor name to its shard file");
    std::map<std::string, std::string> listed;
    std::set<std::string> shards;
    for (const auto& [name, file] : map->items()) {
      if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos)
        throw input_error(index_path.string(),
                          fmt::format("weight_map entry '{}' is not a file name", name),
                          "shards must sit next to the index");
      listed[name] = file.get<std::string>();
      shards.insert(file.get<std::string>());
    }
    for (const auto& shard : shards) {
      if (!std::filesystem::exists(path / shard, ec))
        throw input_error(index_path.string(),
                          fmt::format("lists shard '{}', which is missing", shard),
                          "copy the whole model directory");
      add_file(path / shard);
    }
    for (const auto& [name, shard] : listed) {
      auto owner = reader.owner_.find(name);
      if (owner == reader.owner_.end() ||
          reader.files_[owner->second].path().filename().string() != shard)
        throw input_error(
          index_path.string(),
          fmt::format("lists tensor '{}' in '{}', which does not hold it", name, shard),
          "the index and the shards come from different saves");
    }
    for (const auto& [name, owner] : reader.owner_)
      if (listed.count(name) == 0)
        throw input_error(reader.files_[owner].path().string(),
                          fmt::format("holds tensor '{}', which the index does not list", name),
                          "the index and the shards come from different saves");
    return reader;
  }
  if (std::filesystem::exists(single_path, ec)) {
    add_file(single_path);
    return reader;
  }
  throw input_error(path.string(),
                    "holds neither model.safetensors nor model.safetensors.index.json",
                    "point at a Hugging Face model directory saved with safetensors "
                    "(pytorch_model.bin is not read)");
}

std::vector<std::string> checkpoint_reader::names() const {
  std::vector<std::string> out;
  for (const auto& [name, owner] : owner_)
    out.push_back(name);
  return out;
}

bool checkpoint_reader::contains(const std::string& name) const {
  return owner_.count(name) != 0;
}

at::Tensor checkpoint_reader::tensor(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end())
    throw input_error(path_.string(), fmt::format("no tensor named '{}'", name),
                      "the checkpoint does not match the model's architecture");
  return files_[it->second].tensor(name);
}

const std::filesystem::path& checkpoint_reader::file_of(const std::string& name) const {
  auto it = owner_.find(name);
  return it == owner_.end() ? path_ : files_[it->second].path();
}

// ---- writing -----------------------------------------------------------------------------------

void save_safetensors(const std::filesystem::path& path, const named_tensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty())
    header["__metadata__"] = metadata;
  std::vector<at::Tensor> payload;
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (!seen.insert(name).second)
      throw input_error(path.string(), fmt::format("tensor '{}' is given twice", name),
                        "tensor names must be unique");
    at::Tensor cpu = tensor.detach().to(at::kCPU).contiguous();
    const dtype_info& dtype = dtype_of(cpu.scalar_type(), name);
    uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * dtype.bytes;
    header[name] = {{"dtype", dtype.name},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    payload.push_back(std::move(cpu));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' '); // keeps the data 8-byte aligned
  write_atomically(path, text, payload);
}

bool is_weights_file(const std::string& name) {
  return name == "model.safetensors" || name == "model.safetensors.index.json" ||
         (name.rfind("model-", 0) == 0 && name.find("-of-") != std::string::npos &&
          name.ends_with(".safetensors"));
}

void save_model_weights(const std::filesystem::path& dir, const named_tensors& tensors,
                        uint64_t max_shard_bytes,
                        const std::map<std::string, std::string>& metadata) {
  std::filesystem::create_directories(dir);
  std::vector<named_tensors> shards(1);
  uint64_t shard_bytes = 0;
  uint64_t total = 0;
  for (const auto& item : tensors) {
    uint64_t bytes = static_cast<uint64_t>(item.second.numel() * item.second.element_size());
    if (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(item);
    shard_bytes += bytes;
    total += bytes;
  }

  std::set<std::string> written;
  if (shards.size() == 1) {
    save_safetensors(dir / "model.safetensors", tensors, metadata);
    written.insert("model.safetensors");
  } else {
    json weight_map = json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      std::string file = fmt::format("model-{:05}-of-{:05}.safetensors", i + 1, shards.size());
      save_safetensors(dir / file, shards[i], metadata);
      written.insert(file);
      for (const auto& item : shards[i])
        weight_map[item.first] = file;
    }
    json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    const std::string text = index.dump(2) + "\n";
    files::write_atomically(dir / "model.safetensors.index.json", text);
    written.insert("model.safetensors.index.json");
  }
  // Remove what an earlier save left behind (other shard counts, a stale index).
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (is_weights_file(name) && written.count(name) == 0)
      std::filesystem::remove(entry.path());
  }
}

} // namespace pedagogy::models
