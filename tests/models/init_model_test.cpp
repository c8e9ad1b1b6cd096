// Random-init model folders: a failed write leaves nothing that looks like a model, so the next
// run creates it again, and --force replaces a model's weights without touching other files.
// RLIMIT_FSIZE stands in for a full disk: writes past it fail (EFBIG) where ENOSPC would.
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"
#include "runtime/errors.hpp"
#include "tests/support/file_size_limit.hpp"
#include "tests/support/torch_doctest.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace pedagogy::models;

using pedagogy::testing::file_size_limit;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir =
    fs::temp_directory_path() / ("pedagogy_init_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

init_options tiny_qwen(const fs::path& out, uint64_t seed) {
  init_options o;
  o.family = model_family::qwen2;
  o.seed = seed;
  o.out = out;
  return o;
}

} // namespace

TEST_CASE("a random initialisation that fails on a full disk leaves no model and runs again") {
  const fs::path weights = scratch("full_disk") / "weights";
  const auto options = tiny_qwen(weights / "tutor", 1);
  {
    file_size_limit limit(16 << 10); // config.json fits, model.safetensors (~0.5 MB) does not
    CHECK_THROWS(init_model(options));
  }
  CHECK_FALSE(fs::exists(options.out / "config.json"));
  CHECK(entries(weights).empty()); // no half-written folder beside it either
  init_model(options);             // not refused as "already holds a model"
  CHECK(entries(options.out) == std::vector<std::string>{"config.json", "model.safetensors",
                                                         "tokenizer.json",
                                                         "tokenizer_config.json"});
  CHECK_NOTHROW(transformer::load(options.out, at::kCPU, at::kFloat));
}

TEST_CASE("a forced initialisation replaces the weights and keeps the other files") {
  const fs::path root = scratch("force");
  const fs::path out = root / "model";
  init_model(tiny_qwen(out, 1));
  const auto first = transformer::load(out, at::kCPU, at::kFloat);
  std::ofstream(out / "NOTES.md") << "kept\n";
  std::ofstream(out / "model-00001-of-00002.safetensors") << "stale shard";

  auto again = tiny_qwen(out, 2);
  again.force = true;
  {
    file_size_limit limit(16 << 10); // a failed overwrite keeps the model that was there
    CHECK_THROWS(init_model(again));
  }
  CHECK(at::equal(transformer::load(out, at::kCPU, at::kFloat).named_parameters()[0].second,
                  first.named_parameters()[0].second));

  init_model(again);
  CHECK(entries(root) == std::vector<std::string>{"model"});
  CHECK(entries(out) == std::vector<std::string>{"NOTES.md", "config.json", "model.safetensors",
                                                 "tokenizer.json", "tokenizer_config.json"});
  CHECK_FALSE(at::equal(transformer::load(out, at::kCPU, at::kFloat).named_parameters()[0].second,
                        first.named_parameters()[0].second));
}
