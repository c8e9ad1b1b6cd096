// Loading a model refuses what it cannot run as is, naming the file and tensor or the config key:
// weights that do not fit config.json, stored dtypes other than the one it names, weights that are
// NaN, infinite or absurdly large, and devices this process cannot use.
#include "models/tensor/device.hpp"
#include "models/tensor/transformer.hpp"
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/tiny_config.hpp"
#include "tests/support/torch_doctest.hpp"

#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

namespace fs = std::filesystem;
using namespace pedagogy::models;
using pedagogy::input_error;

using pedagogy::testing::tiny_config;

namespace {

struct temp_dir : pedagogy::testing::temp_dir {
  explicit temp_dir(const std::string& name)
    : pedagogy::testing::temp_dir("tf_load_" + name, start::absent) {}
};

std::string error_of(const fs::path& dir, at::ScalarType dtype = at::kFloat) {
  try {
    transformer::load(dir, at::kCPU, dtype);
  } catch (const input_error& e) {
    return e.what();
  }
  FAIL("loading did not fail");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string device_error(const std::string& text) {
  try {
    device_from_config(text, "tutor.device");
  } catch (const input_error& e) {
    CHECK(e.where() == "tutor.device");
    CHECK_FALSE(e.hint().empty());
    return e.what();
  }
  FAIL("device_from_config accepted '" << text << "'");
  return {};
}

} // namespace

TEST_CASE("weights that do not fit config.json are refused by name") {
  temp_dir dir("strict");
  auto model = transformer::random(tiny_config(model_family::llama), 2, at::kCPU, at::kFloat);
  model.save(dir.path);
  named_tensors tensors = model.named_parameters();

  SUBCASE("a missing tensor") {
    tensors.pop_back();
    save_model_weights(dir.path, tensors);
    CHECK(contains(error_of(dir.path), "tensor 'lm_head.weight' is missing"));
  }
  SUBCASE("an unexpected tensor") {
    tensors.emplace_back("model.layers.9.mlp.up_proj.weight", at::zeros({2}));
    save_model_weights(dir.path, tensors);
    CHECK(contains(error_of(dir.path), "unexpected tensor 'model.layers.9.mlp.up_proj.weight'"));
  }
  SUBCASE("a tensor of the wrong shape") {
    tensors[0].second = at::zeros({3, 3});
    save_model_weights(dir.path, tensors);
    CHECK(contains(error_of(dir.path), "has shape [3, 3], config.json implies [97, 32]"));
  }
  SUBCASE("a config.json we cannot run") {
    std::ofstream(dir.path / "config.json") << R"({"model_type": "gpt2"})";
    CHECK(contains(error_of(dir.path), "model_type 'gpt2' is not supported"));
    std::ofstream(dir.path / "config.json")
      << R"({"model_type": "llama", "vocab_size": 97, "hidden_size": 32, "intermediate_size": 64,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3})";
    CHECK(contains(error_of(dir.path), "not a multiple of num_key_value_heads"));
    std::ofstream(dir.path / "config.json")
      << R"({"model_type": "llama", "vocab_size": 97, "hidden_size": 32, "intermediate_size": 64,
             "num_hidden_layers": 2, "num_attention_heads": 4, "rope_scaling": {"rope_type": "yarn"}})";
    CHECK(contains(error_of(dir.path), "rope_type 'yarn' is not supported"));
    std::ofstream(dir.path / "config.json") << R"({"model_type": "qwen2", "vocab_size": 97})";
    CHECK(contains(error_of(dir.path), "\"hidden_size\" must be a positive integer"));
  }
}

TEST_CASE("stored dtypes must be the one config.json names, in every tensor") {
  temp_dir dir("dtype");
  auto model = transformer::random(tiny_config(model_family::qwen3), 2, at::kCPU, at::kFloat);
  model.save(dir.path); // float32, and config.json says so
  auto error_for = [&](const fs::path& d, at::ScalarType requested) -> std::string {
    try {
      transformer::load(d, at::kCPU, requested);
    } catch (const input_error& e) {
      return e.what();
    }
    return "";
  };
  // Asking for another compute dtype is a deliberate conversion, not a mismatch.
  CHECK(error_for(dir.path, at::kBFloat16).empty());

  named_tensors tensors = model.named_parameters();
  SUBCASE("one tensor stored in another dtype") {
    tensors[3].second = tensors[3].second.to(at::kBFloat16);
    save_model_weights(dir.path, tensors);
    const std::string error = error_for(dir.path, at::kFloat);
    CHECK(contains(error, "model.safetensors"));
    CHECK(contains(error, tensors[3].first));
    CHECK(contains(error, "BF16"));
    CHECK(contains(error, "float32"));
  }
  SUBCASE("config.json names another dtype than the weights have") {
    std::ifstream in(dir.path / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    in.close();
    j["torch_dtype"] = "bfloat16";
    std::ofstream(dir.path / "config.json") << j.dump(2);
    const std::string error = error_for(dir.path, at::kBFloat16);
    CHECK(contains(error, "model.safetensors"));
    CHECK(contains(error, "model.embed_tokens.weight"));
    CHECK(contains(error, "F32"));
  }
  SUBCASE("integer weights") {
    tensors[0].second = at::zeros(tensors[0].second.sizes(), at::kLong);
    save_model_weights(dir.path, tensors);
    const std::string error = error_for(dir.path, at::kFloat);
    CHECK(contains(error, "model.embed_tokens.weight"));
    CHECK(contains(error, "I64"));
  }
}

TEST_CASE("weights that are NaN, infinite or absurdly large are refused by file and tensor") {
  temp_dir dir("insane");
  auto model = transformer::random(tiny_config(model_family::qwen2), 2, at::kCPU, at::kFloat);
  model.save(dir.path);
  const std::string target = "model.layers.1.mlp.down_proj.weight";
  // Each case: the value written, whether it fills the whole tensor, what the tensor "holds".
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct bad_case {
    float value;
    bool whole;
    const char* said;
  };
  for (const bad_case& c :
       {bad_case{nan, true, "NaN"}, bad_case{nan, false, "NaN"},
        bad_case{inf, false, "an infinite value"}, bad_case{-inf, false, "an infinite value"},
        bad_case{1e38f, true, "a weight of magnitude"},
        bad_case{-70000.0f, false, "a weight of magnitude"}}) {
    CAPTURE(c.value);
    CAPTURE(c.whole);
    named_tensors tensors;
    for (const auto& [name, tensor] : model.named_parameters()) {
      at::Tensor copy = tensor.clone();
      if (name == target && c.whole)
        copy.fill_(c.value);
      else if (name == target)
        copy.view(-1)[5].fill_(c.value);
      tensors.emplace_back(name, copy);
    }
    save_model_weights(dir.path, tensors);
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      const std::string error = error_of(dir.path, dtype);
      CHECK(contains(error, (dir.path / "model.safetensors").string()));
      CHECK(contains(error, "tensor '" + target + "' holds " + c.said));
    }
  }
  // Large weights real checkpoints have (norms and biases in the hundreds) load.
  named_tensors tensors;
  for (const auto& [name, tensor] : model.named_parameters())
    tensors.emplace_back(name, name == target ? tensor.clone().fill_(300.0) : tensor);
  save_model_weights(dir.path, tensors);
  CHECK_NOTHROW(transformer::load(dir.path, at::kCPU, at::kBFloat16));
}

TEST_CASE("a CUDA device this process cannot use is refused naming the config key") {
  const auto gpus = static_cast<int64_t>(torch::cuda::device_count());
  CHECK(device_from_config("cpu", "tutor.device").is_cpu());
  CHECK(device_from_config("auto", "tutor.device").is_cuda() == (gpus > 0));
  for (const std::string& past : {"cuda:" + std::to_string(gpus), std::string("cuda:99")}) {
    CAPTURE(past);
    CHECK(contains(device_error(past), "tutor.device: '" + past + "'"));
  }
  if (gpus == 0)
    CHECK(contains(device_error("cuda"), "asks for a GPU"));
  else
    CHECK(device_from_config("cuda:0", "tutor.device").is_cuda());
  CHECK(contains(device_error("gpu"), "'gpu' is not a device"));
  CHECK(contains(device_error("meta"), "is not a device this program runs on"));
}
