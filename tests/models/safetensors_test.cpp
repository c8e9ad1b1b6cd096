// safetensors reading, writing, sharding, and the errors for broken files.
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/torch_doctest.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using pedagogy::input_error;
using namespace pedagogy::models;

namespace {

// A fresh folder under /tmp, removed at the end of the test.
struct temp_dir : pedagogy::testing::temp_dir {
  explicit temp_dir(const std::string& name) : pedagogy::testing::temp_dir("st_" + name) {}
};

// A file made of a header length, `header` and `data`, with the length given explicitly.
fs::path raw_file(const fs::path& path, const std::string& header, const std::string& data,
                  uint64_t length) {
  std::ofstream out(path, std::ios::binary);
  char prefix[8];
  std::memcpy(prefix, &length, 8);
  out.write(prefix, 8);
  out << header << data;
  return path;
}

fs::path raw_file(const fs::path& path, const std::string& header, const std::string& data) {
  return raw_file(path, header, data, header.size());
}

// The message of the input_error that opening `path` throws.
std::string open_error(const fs::path& path) {
  try {
    safetensors_file::open(path);
  } catch (const input_error& e) {
    CHECK(std::string(e.what()).find(path.string()) != std::string::npos); // names the file
    CHECK_FALSE(e.hint().empty());
    return e.what();
  }
  FAIL("opening " << path << " did not fail");
  return {};
}

std::string reader_error(const fs::path& path) {
  try {
    checkpoint_reader::open(path);
  } catch (const input_error& e) {
    return e.what();
  }
  FAIL("opening " << path << " did not fail");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a saved file loads back bit for bit, for every dtype") {
  temp_dir dir("dtypes");
  at::manual_seed(0);
  named_tensors tensors = {
    {"f32", at::randn({3, 5})},
    {"f16", at::randn({4}).to(at::kHalf)},
    {"bf16", at::randn({2, 3, 2}).to(at::kBFloat16)},
    {"f64", at::randn({2}, at::kDouble)},
    {"i32", at::arange(7, at::kInt)},
    {"i64", at::arange(-3, 3, at::kLong)},
    {"u8", at::arange(5, at::kByte)},
    {"bool", at::arange(4) % 2 == 0},
    {"scalar", at::tensor(2.5f).reshape({})},
    {"empty", at::empty({0, 4})},
    {"strided", at::randn({4, 6}).t()}, // not contiguous: saved as its values
  };
  save_safetensors(dir.path / "w.safetensors", tensors, {{"format", "pt"}});
  auto file = safetensors_file::open(dir.path / "w.safetensors");
  CHECK(file.header().metadata.at("format") == "pt");
  CHECK(file.header().tensors.size() == tensors.size());
  for (const auto& item : tensors) {
    const std::string& name = item.first;
    const at::Tensor& original = item.second;
    CAPTURE(name);
    at::Tensor loaded = file.tensor(name);
    CHECK(std::string(at::toString(loaded.scalar_type())) == at::toString(original.scalar_type()));
    CHECK(loaded.sizes().vec() == original.sizes().vec());
    CHECK(at::equal(loaded, original));
  }
}

TEST_CASE("tensors view the mapping and outlive the file object") {
  temp_dir dir("view");
  at::Tensor weight = at::randn({64, 64});
  save_safetensors(dir.path / "w.safetensors", {{"w", weight}});
  at::Tensor first;
  {
    auto file = safetensors_file::open(dir.path / "w.safetensors");
    first = file.tensor("w");
    // Two reads of the same tensor share memory: no copy was made.
    CHECK(file.tensor("w").data_ptr() == first.data_ptr());
  }
  CHECK(at::equal(first, weight)); // still readable after the file object is gone
}

TEST_CASE("a sharded save splits by size, writes an index, and reads back as one checkpoint") {
  temp_dir dir("sharded");
  named_tensors tensors;
  for (int i = 0; i < 5; ++i)
    tensors.emplace_back("layer." + std::to_string(i) + ".weight", at::randn({16, 16})); // 1 KiB
  save_model_weights(dir.path, tensors, /*max_shard_bytes=*/2048);
  CHECK(fs::exists(dir.path / "model.safetensors.index.json"));
  CHECK(fs::exists(dir.path / "model-00003-of-00003.safetensors"));
  CHECK_FALSE(fs::exists(dir.path / "model.safetensors"));

  auto reader = checkpoint_reader::open(dir.path);
  CHECK(reader.names().size() == 5);
  for (const auto& [name, original] : tensors)
    CHECK(at::equal(reader.tensor(name), original));

  // Saving again unsharded removes the old shards and index.
  save_model_weights(dir.path, tensors);
  CHECK(fs::exists(dir.path / "model.safetensors"));
  CHECK_FALSE(fs::exists(dir.path / "model.safetensors.index.json"));
  CHECK_FALSE(fs::exists(dir.path / "model-00001-of-00003.safetensors"));
  CHECK(at::equal(checkpoint_reader::open(dir.path).tensor("layer.4.weight"), tensors[4].second));
}

TEST_CASE("truncated and corrupted files each get a clear error") {
  temp_dir dir("corrupt");
  const std::string one = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string eight(8, '\0');
  auto at = [&](const char* name) {
    return dir.path / name;
  };

  { // 1: empty
    std::ofstream(at("empty.safetensors"));
    CHECK(contains(open_error(at("empty.safetensors")), "0 bytes are too few"));
  }
  { // 2: shorter than the length prefix
    std::ofstream(at("short.safetensors")) << "abcde";
    CHECK(contains(open_error(at("short.safetensors")), "5 bytes are too few"));
  }
  // 3: header length beyond the limit
  CHECK(contains(open_error(raw_file(at("huge.safetensors"), one, eight, 1ull << 40)),
                 "more than the 100000000 byte limit"));
  // 4: header length past the end of the file
  CHECK(contains(open_error(raw_file(at("past.safetensors"), one, eight, one.size() + 100)),
                 "the file has only"));
  // 5: header is not JSON
  CHECK(
    contains(open_error(raw_file(at("json.safetensors"), "{\"w\": [1, 2", "")), "not valid JSON"));
  // 6: header is JSON but not an object
  CHECK(
    contains(open_error(raw_file(at("array.safetensors"), "[1, 2, 3]", "")), "not a JSON object"));
  // 7: an entry without a dtype
  CHECK(contains(open_error(raw_file(at("nodtype.safetensors"),
                                     R"({"w":{"shape":[2],"data_offsets":[0,8]}})", eight)),
                 "\"dtype\" is missing"));
  // 8: an unknown dtype
  CHECK(contains(
    open_error(raw_file(at("dtype.safetensors"),
                        R"({"w":{"dtype":"F8_Q","shape":[2],"data_offsets":[0,8]}})", eight)),
    "unknown dtype 'F8_Q'"));
  // 9: a negative dimension
  CHECK(contains(
    open_error(raw_file(at("shape.safetensors"),
                        R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight)),
    "non-negative integer"));
  // 10: offsets that end before they begin
  CHECK(contains(
    open_error(raw_file(at("order.safetensors"),
                        R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", eight)),
    "end before they begin"));
  // 11: dtype x shape does not match the bytes the offsets span
  CHECK(contains(
    open_error(raw_file(at("size.safetensors"),
                        R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight)),
    "needs 12 bytes, but its offsets [0, 8] span 8"));
  // 12: data cut off (a download that stopped early)
  CHECK(contains(open_error(raw_file(at("truncated.safetensors"), one, "1234")),
                 "ends at byte 8 of the data, but the file holds only 4"));
  // 13: two tensors overlap
  CHECK(contains(open_error(raw_file(at("overlap.safetensors"),
                                     R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                     eight)),
                 "overlaps"));
  // 14: a hole between tensors
  CHECK(contains(
    open_error(raw_file(at("hole.safetensors"),
                        R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight)),
    "4 unused bytes lie before tensor 'a'"));
  // 15: bytes after the last tensor
  CHECK(contains(open_error(raw_file(at("trailing.safetensors"), one, eight + "junk")),
                 "4 bytes follow the last tensor"));
  // 16: metadata that is not text
  CHECK(contains(open_error(raw_file(at("meta.safetensors"), R"({"__metadata__":{"step":3}})", "")),
                 "metadata 'step' is not a string"));
  // 17: a path that does not exist
  CHECK(contains(open_error(at("missing.safetensors")), "cannot open"));
}

TEST_CASE("a broken shard index or model directory is reported") {
  temp_dir dir("index");
  save_model_weights(dir.path, {{"a", at::ones({4})}, {"b", at::ones({4})}},
                     /*max_shard_bytes=*/16);
  const auto index = dir.path / "model.safetensors.index.json";

  { // the index names a shard that is gone
    temp_dir copy("index_missing");
    fs::copy(dir.path, copy.path,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    fs::remove(copy.path / "model-00002-of-00002.safetensors");
    CHECK(contains(reader_error(copy.path),
                   "lists shard 'model-00002-of-00002.safetensors', which is missing"));
  }
  { // the index puts a tensor into the wrong shard
    std::ofstream(index) << R"({"weight_map":{"a":"model-00002-of-00002.safetensors",)"
                            R"("b":"model-00002-of-00002.safetensors"}})";
    CHECK(
      contains(reader_error(dir.path), "lists tensor 'a' in 'model-00002-of-00002.safetensors'"));
  }
  { // a shard holds a tensor the index forgets
    temp_dir extra("index_extra");
    save_safetensors(extra.path / "model-00001-of-00001.safetensors",
                     {{"a", at::ones({4})}, {"b", at::ones({4})}});
    std::ofstream(extra.path / "model.safetensors.index.json")
      << R"({"weight_map":{"a":"model-00001-of-00001.safetensors"}})";
    CHECK(contains(reader_error(extra.path), "holds tensor 'b', which the index does not list"));
  }
  { // the index is not JSON
    std::ofstream(index) << "{\"weight_map\": ";
    CHECK(contains(reader_error(dir.path), "not valid JSON"));
  }
  { // a folder without weights
    temp_dir empty("index_empty");
    CHECK(contains(reader_error(empty.path), "holds neither model.safetensors"));
  }
  { // a tensor that is not there
    temp_dir single("index_single");
    save_model_weights(single.path, {{"a", at::ones({2})}});
    auto reader = checkpoint_reader::open(single.path);
    CHECK_THROWS_AS(reader.tensor("model.embed_tokens.weight"), input_error);
  }
}

TEST_CASE("an interrupted save leaves the previous file intact") {
  temp_dir dir("atomic");
  const auto path = dir.path / "w.safetensors";
  save_safetensors(path, {{"w", at::ones({3})}});
  // A tensor of a type safetensors cannot hold makes the second save fail midway.
  named_tensors bad = {{"w", at::zeros({3})}, {"c", at::ones({2}, at::kComplexFloat)}};
  CHECK_THROWS_AS(save_safetensors(path, bad), input_error);
  CHECK(at::equal(safetensors_file::open(path).tensor("w"), at::ones({3})));
  // Nothing but the original file remains.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
}
