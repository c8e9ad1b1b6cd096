// config.json: what we refuse (with the file and the field named) and every layout of the RoPE
// settings transformers writes; model files that are not regular files are refused unopened.
#include "models/tensor/rope.hpp"
#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"
#include "models/weights/model_config.hpp"
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/torch_doctest.hpp"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace pedagogy::models;
using pedagogy::input_error;

namespace {

// A small Llama config.json in the layout transformers v4 writes.
json llama_v4() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 97,
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "hidden_act": "silu",
    "rope_theta": 500000.0, "bos_token_id": 1, "eos_token_id": [2, 3],
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    "torch_dtype": "float32"})");
}

// The message of the input_error that parsing `j` throws ("" when it does not throw).
std::string parse_error(const json& j) {
  try {
    model_config::parse(j.dump(), "dir/config.json");
  } catch (const input_error& e) {
    CHECK_FALSE(e.hint().empty());
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct temp_dir : pedagogy::testing::temp_dir {
  explicit temp_dir(const std::string& name) : pedagogy::testing::temp_dir("mc_" + name) {}
};

// A FIFO at `path` with a writer that opens it once and closes it, so that code which (wrongly)
// opens the FIFO reads an empty file instead of blocking forever. The destructor opens the read
// end itself, without blocking, to release a writer nobody met, then joins it.
struct fifo {
  fs::path path;
  std::thread writer;
  explicit fifo(fs::path p) : path(std::move(p)) {
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    writer = std::thread([file = path] {
      int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd >= 0)
        ::close(fd);
    });
  }
  ~fifo() {
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    writer.join();
    if (fd >= 0)
      ::close(fd);
    fs::remove(path);
  }
};

// The message of the input_error that `load` throws.
std::string load_error(const std::function<void()>& load) {
  try {
    load();
  } catch (const input_error& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("the v4 test config parses as written") {
  model_config c = model_config::parse(llama_v4().dump(), "t");
  CHECK(c.rope_theta == 500000.0);
  CHECK(c.rope_scaling.llama3);
  CHECK(c.eos_token_ids == std::vector<int64_t>{2, 3});
}

TEST_CASE("config.json values we cannot run exactly are refused by field") {
  struct bad_case {
    const char* field;
    std::function<void(json&)> change;
  };
  const bad_case cases[] = {
    {"hidden_act",
     [](json& j) {
       j["hidden_act"] = "gelu";
     }},
    {"hidden_act",
     [](json& j) {
       j["hidden_act"] = 3;
     }},
    {"rope_theta",
     [](json& j) {
       j["rope_theta"] = 0.0;
     }},
    {"rope_theta",
     [](json& j) {
       j["rope_theta"] = -10000.0;
     }},
    {"rms_norm_eps",
     [](json& j) {
       j["rms_norm_eps"] = 0.0;
     }},
    {"rms_norm_eps",
     [](json& j) {
       j["rms_norm_eps"] = -1e-6;
     }},
    {"factor",
     [](json& j) {
       j["rope_scaling"]["factor"] = -8.0;
     }},
    {"low_freq_factor",
     [](json& j) {
       j["rope_scaling"]["low_freq_factor"] = 0.0;
     }},
    {"high_freq_factor",
     [](json& j) {
       j["rope_scaling"]["high_freq_factor"] = 1.0;
     }},
    {"original_max_position_embeddings",
     [](json& j) {
       j["rope_scaling"]["original_max_position_embeddings"] = -1;
     }},
    {"factor",
     [](json& j) {
       j["rope_scaling"].erase("factor");
     }},
    {"eos_token_id",
     [](json& j) {
       j["eos_token_id"] = 97;
     }},
    {"eos_token_id",
     [](json& j) {
       j["eos_token_id"] = json::array({2, -1});
     }},
    {"eos_token_id",
     [](json& j) {
       j["eos_token_id"] = "2";
     }},
    {"bos_token_id",
     [](json& j) {
       j["bos_token_id"] = 1000;
     }},
    {"head_dim",
     [](json& j) {
       j["head_dim"] = int64_t{1} << 40;
     }},
    {"num_hidden_layers",
     [](json& j) {
       j["num_hidden_layers"] = 1000000;
     }},
    {"num_hidden_layers",
     [](json& j) {
       j["num_hidden_layers"] = 1e6;
     }},
    {"vocab_size",
     [](json& j) {
       j["vocab_size"] = int64_t{1} << 40;
     }},
    {"hidden_size",
     [](json& j) {
       j["hidden_size"] = int64_t{1} << 33;
     }},
    {"intermediate_size",
     [](json& j) {
       j["intermediate_size"] = int64_t{1} << 40;
     }},
    {"num_attention_heads",
     [](json& j) {
       j["num_attention_heads"] = int64_t{1} << 40;
     }},
    {"num_key_value_heads",
     [](json& j) {
       j["num_key_value_heads"] = 8;
     }},
    {"max_position_embeddings",
     [](json& j) {
       j["max_position_embeddings"] = -5;
     }},
    {"partial_rotary_factor",
     [](json& j) {
       j["partial_rotary_factor"] = 0.5;
     }},
    {"torch_dtype",
     [](json& j) {
       j["torch_dtype"] = "int8";
     }},
    {"quantization_config",
     [](json& j) {
       j["quantization_config"] = {{"bits", 4}};
     }},
    {"rope_type",
     [](json& j) {
       j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
     }},
    {"rope_type",
     [](json& j) {
       j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
     }},
    {"rope_type",
     [](json& j) {
       j["rope_scaling"] = {{"rope_type", "longrope"}};
     }},
    {"rope_type",
     [](json& j) {
       j["rope_scaling"] = {{"rope_type", "su"}};
     }},
    {"rope_type",
     [](json& j) {
       j["rope_scaling"] = {{"rope_type", "llama3"}, {"type", "linear"}};
     }},
    {"rope_scaling",
     [](json& j) {
       j["rope_scaling"] = "llama3";
     }},
  };
  for (const auto& c : cases) {
    json j = llama_v4();
    c.change(j);
    CAPTURE(j.dump());
    const std::string error = parse_error(j);
    CHECK(contains(error, "dir/config.json"));
    CHECK(contains(error, c.field));
  }
}

TEST_CASE("a config.json that is not a JSON object is refused") {
  for (const char* text : {"[1, 2]", "null", "42", "\"llama\""}) {
    CAPTURE(text);
    const std::string error = load_error([&] { model_config::parse(text, "dir/config.json"); });
    CHECK(contains(error, "dir/config.json"));
    CHECK(contains(error, "not a JSON object"));
  }
  temp_dir dir("folder");
  fs::create_directories(dir.path / "config.json");
  const std::string error = load_error([&] { model_config::load(dir.path); });
  CHECK(contains(error, (dir.path / "config.json").string()));
  CHECK(contains(error, "folder"));
}

TEST_CASE("RoPE settings read alike from every layout transformers writes") {
  const model_config v4 = model_config::parse(llama_v4().dump(), "t");

  // transformers v5: rope_parameters holds the type, theta and scaling; no top-level rope_theta.
  json v5 = llama_v4();
  v5.erase("rope_theta");
  v5.erase("rope_scaling");
  v5["rope_parameters"] = {{"rope_type", "llama3"},
                           {"factor", 8.0},
                           {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 64},
                           {"rope_theta", 500000.0}};
  const model_config c5 = model_config::parse(v5.dump(), "t");
  CHECK(c5.rope_theta == 500000.0);
  CHECK(c5.rope_scaling.llama3);
  CHECK(c5.to_json() == v4.to_json());

  // Older files name the type "type".
  json old = llama_v4();
  old["rope_scaling"].erase("rope_type");
  old["rope_scaling"]["type"] = "llama3";
  CHECK(model_config::parse(old.dump(), "t").to_json() == v4.to_json());

  // Plain RoPE in v5: {"rope_type": "default", "rope_theta": ...}.
  json plain = llama_v4();
  plain.erase("rope_theta");
  plain.erase("rope_scaling");
  plain["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  const model_config p = model_config::parse(plain.dump(), "t");
  CHECK(p.rope_theta == 1000000.0);
  CHECK_FALSE(p.rope_scaling.llama3);

  // Nothing anywhere: transformers' default theta.
  plain.erase("rope_parameters");
  CHECK(model_config::parse(plain.dump(), "t").rope_theta == 10000.0);

  // Two places that disagree are refused rather than one picked.
  json both = llama_v4();
  both["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
  const std::string error = parse_error(both);
  CHECK(contains(error, "rope_theta"));
  CHECK(contains(error, "rope_parameters"));

  // The dtype key of transformers v5.
  json dtype = llama_v4();
  dtype.erase("torch_dtype");
  dtype["dtype"] = "bfloat16";
  CHECK(model_config::parse(dtype.dump(), "t").torch_dtype == "bfloat16");
}

TEST_CASE("linear RoPE scaling divides every frequency by the factor") {
  json j = llama_v4();
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 4.0}};
  const model_config c = model_config::parse(j.dump(), "t");
  // It survives a save: the written config.json reads back the same.
  CHECK(model_config::parse(c.to_json(), "t").to_json() == c.to_json());
  CHECK(contains(c.to_json(), "linear"));
  json unscaled = j;
  unscaled.erase("rope_scaling");
  at::Tensor base = rope_inverse_frequencies(model_config::parse(unscaled.dump(), "t"));
  CHECK(at::allclose(rope_inverse_frequencies(c), base / 4.0));
}

TEST_CASE("model files that are FIFOs are refused without being opened") {
  temp_dir dir("fifo");
  {
    fifo f(dir.path / "config.json");
    const std::string error = load_error([&] { model_config::load(dir.path); });
    CHECK(contains(error, "config.json"));
    CHECK(contains(error, "FIFO"));
  }
  {
    fifo f(dir.path / "tokenizer.json");
    const std::string error =
      load_error([&] { tokenizer::from_file(dir.path / "tokenizer.json"); });
    CHECK(contains(error, "tokenizer.json"));
    CHECK(contains(error, "FIFO"));
  }
  {
    fifo f(dir.path / "tokenizer_config.json");
    const std::string error = load_error([&] { chat_format::from_model_dir(dir.path); });
    CHECK(contains(error, "tokenizer_config.json"));
    CHECK(contains(error, "FIFO"));
  }
  {
    fifo f(dir.path / "model.safetensors");
    const std::string error = load_error([&] { checkpoint_reader::open(dir.path); });
    CHECK(contains(error, "model.safetensors"));
    CHECK(contains(error, "FIFO"));
  }
  {
    fifo f(dir.path / "model.safetensors.index.json");
    const std::string error = load_error([&] { checkpoint_reader::open(dir.path); });
    CHECK(contains(error, "model.safetensors.index.json"));
    CHECK(contains(error, "FIFO"));
  }
}
