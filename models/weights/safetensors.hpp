// safetensors: the weight format of Hugging Face model directories.
//
// Layout of one file: an 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}),
// then the data buffer the offsets point into. Big models are split into shards listed by
// model.safetensors.index.json ({"weight_map": {"name": "model-00001-of-00004.safetensors"}}).
//
// Reading maps the file and hands out tensors that view the mapping (no copy when the caller
// keeps the stored dtype); the header is validated as strictly as the reference implementation
// (size limit, bounds, overlaps, holes, dtype x shape vs bytes), so a truncated or corrupted file
// is an input_error naming the file and tensor, never a crash. Writing goes through a temporary
// file and a rename, so an interrupted save never destroys the previous file.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pedagogy::models {

// Header entry of one tensor; offsets are relative to the start of the data buffer.
struct tensor_entry {
  std::string name;
  std::string dtype; // "F32", "F16", "BF16", "I32", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct safetensors_header {
  std::vector<tensor_entry> tensors; // in data order
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0; // 8 + header length: where the data buffer starts in the file
};

// Headers longer than this are rejected (the reference implementation's limit).
inline constexpr uint64_t max_header_bytes = 100'000'000;

// Validates the raw bytes of a file (at least its first `8 + N` bytes) against its total size.
// Pure: no I/O, no torch. `where` names the file in errors.
safetensors_header parse_header(std::string_view bytes, uint64_t file_size,
                                const std::string& where);

// One memory-mapped .safetensors file.
class safetensors_file {
public:
  static safetensors_file open(const std::filesystem::path& path);

  const std::filesystem::path& path() const {
    return path_;
  }
  const safetensors_header& header() const {
    return header_;
  }
  bool contains(const std::string& name) const;
  // A tensor viewing the mapping (read-only memory: copy it before writing into it).
  at::Tensor tensor(const std::string& name) const;

private:
  struct mapping;
  std::filesystem::path path_;
  safetensors_header header_;
  std::map<std::string, size_t> index_;
  std::shared_ptr<mapping> map_;
};

// The weights of a model directory: model.safetensors, or the shards named by
// model.safetensors.index.json (each shard checked against the index).
class checkpoint_reader {
public:
  // `path` is a model directory or a single .safetensors file.
  static checkpoint_reader open(const std::filesystem::path& path);

  std::vector<std::string> names() const; // sorted
  bool contains(const std::string& name) const;
  at::Tensor tensor(const std::string& name) const;
  // The .safetensors file that holds `name` (errors name it).
  const std::filesystem::path& file_of(const std::string& name) const;
  const std::filesystem::path& path() const {
    return path_;
  }

private:
  std::filesystem::path path_;
  std::vector<safetensors_file> files_;
  std::map<std::string, size_t> owner_; // tensor name -> index into files_
};

using named_tensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes one .safetensors file (tensors are made contiguous; CUDA tensors are copied to CPU).
void save_safetensors(const std::filesystem::path& path, const named_tensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Whether a file name is one save_model_weights writes: model.safetensors, a shard
// (model-0000k-of-0000n.safetensors) or the shard index.
bool is_weights_file(const std::string& name);

// Writes `dir/model.safetensors`, or, when the tensors exceed `max_shard_bytes`,
// `dir/model-0000k-of-0000n.safetensors` plus `model.safetensors.index.json`, as
// transformers' save_pretrained does. Stale shards of an earlier save are removed.
void save_model_weights(const std::filesystem::path& dir, const named_tensors& tensors,
                        uint64_t max_shard_bytes = 5ull << 30,
                        const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

} // namespace pedagogy::models
