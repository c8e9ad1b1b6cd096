// Reads and writes config.json for the supported decoder families (see model_config.hpp).
#include "models/model_config.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace pedagogy::models {

namespace {

using json = nlohmann::json;

int64_t positive(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() <= 0)
    throw input_error(where, fmt::format("\"{}\" must be a positive integer", key),
                      "the config.json is incomplete or not a decoder model's");
  return it->get<int64_t>();
}

} // namespace

std::string to_string(model_family family) {
  switch (family) {
    case model_family::qwen2:
      return "qwen2";
    case model_family::qwen3:
      return "qwen3";
    case model_family::llama:
      return "llama";
  }
  return "?";
}

model_family family_from_name(const std::string& name, const std::string& where) {
  for (auto f : {model_family::qwen2, model_family::qwen3, model_family::llama})
    if (name == to_string(f))
      return f;
  throw input_error(where, fmt::format("unknown model family '{}'", name),
                    "use qwen2, qwen3 or llama");
}

model_config model_config::load(const std::filesystem::path& dir) {
  const auto path = dir / "config.json";
  std::ifstream in(path);
  if (!in)
    throw input_error(path.string(), "cannot read config.json",
                      "point at a Hugging Face model directory (or create one with init-model)");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  return parse(text, path.string());
}

model_config model_config::parse(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw input_error(where, fmt::format("not valid JSON: {}", e.what()),
                      "the file is truncated or corrupted: copy it again");
  }
  model_config c;
  const std::string type = j.value("model_type", "");
  if (type == "qwen2")
    c.family = model_family::qwen2;
  else if (type == "qwen3")
    c.family = model_family::qwen3;
  else if (type == "llama")
    c.family = model_family::llama;
  else
    throw input_error(where, fmt::format("model_type '{}' is not supported", type),
                      "supported: qwen2 (Qwen2, Qwen2.5), qwen3, llama (Llama-3.x)");
  try {
    c.vocab_size = positive(j, "vocab_size", where);
    c.hidden_size = positive(j, "hidden_size", where);
    c.intermediate_size = positive(j, "intermediate_size", where);
    c.num_hidden_layers = positive(j, "num_hidden_layers", where);
    c.num_attention_heads = positive(j, "num_attention_heads", where);
    c.num_key_value_heads = j.contains("num_key_value_heads")
                              ? positive(j, "num_key_value_heads", where)
                              : c.num_attention_heads;
    c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null()
                   ? positive(j, "head_dim", where)
                   : c.hidden_size / c.num_attention_heads;
    c.max_position_embeddings = j.value("max_position_embeddings", int64_t{4096});
    c.rms_norm_eps = j.value("rms_norm_eps", 1e-6);
    c.rope_theta = j.value("rope_theta", 10000.0);
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    c.attention_bias = c.family == model_family::qwen2 ? true : j.value("attention_bias", false);
    c.torch_dtype = j.value("torch_dtype", std::string("float32"));
    if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer())
      c.bos_token_id = j["bos_token_id"];
    if (j.contains("eos_token_id")) {
      const json& eos = j["eos_token_id"];
      if (eos.is_number_integer())
        c.eos_token_ids = {eos.get<int64_t>()};
      else if (eos.is_array())
        c.eos_token_ids = eos.get<std::vector<int64_t>>();
    }
    if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
      const json& s = j["rope_scaling"];
      const std::string rope_type = s.value("rope_type", s.value("type", std::string("default")));
      if (rope_type == "llama3") {
        c.rope_scaling.llama3 = true;
        c.rope_scaling.factor = s.value("factor", 8.0);
        c.rope_scaling.low_freq_factor = s.value("low_freq_factor", 1.0);
        c.rope_scaling.high_freq_factor = s.value("high_freq_factor", 4.0);
        c.rope_scaling.original_max_position_embeddings =
          s.value("original_max_position_embeddings", int64_t{8192});
      } else if (rope_type != "default") {
        throw input_error(where, fmt::format("rope_scaling type '{}' is not supported", rope_type),
                          "supported: none, default, llama3");
      }
    }
    if (j.value("use_sliding_window", false))
      throw input_error(where, "sliding-window attention is not supported",
                        "set use_sliding_window to false (Qwen2.5 checkpoints ship it off)");
    if (j.value("mlp_bias", false))
      throw input_error(where, "mlp_bias = true is not supported", "Llama-3.x has no MLP bias");
  } catch (const json::type_error& e) {
    throw input_error(where, fmt::format("a field has the wrong type: {}", e.what()),
                      "compare it with the model's original config.json");
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    throw input_error(
      where,
      fmt::format("num_attention_heads = {} is not a multiple of num_key_value_heads "
                  "= {}",
                  c.num_attention_heads, c.num_key_value_heads),
      "grouped-query attention shares each key/value head among a whole group");
  if (c.head_dim % 2 != 0)
    throw input_error(where, fmt::format("head_dim = {} is odd", c.head_dim),
                      "rotary embeddings need an even head dimension");
  return c;
}

std::string model_config::to_json() const {
  static const char* architectures[] = {"Qwen2ForCausalLM", "Qwen3ForCausalLM", "LlamaForCausalLM"};
  json j = {
    {"architectures", {architectures[static_cast<int>(family)]}},
    {"model_type", to_string(family)},
    {"vocab_size", vocab_size},
    {"hidden_size", hidden_size},
    {"intermediate_size", intermediate_size},
    {"num_hidden_layers", num_hidden_layers},
    {"num_attention_heads", num_attention_heads},
    {"num_key_value_heads", num_key_value_heads},
    {"head_dim", head_dim},
    {"max_position_embeddings", max_position_embeddings},
    {"rms_norm_eps", rms_norm_eps},
    {"rope_theta", rope_theta},
    {"tie_word_embeddings", tie_word_embeddings},
    {"hidden_act", "silu"},
    {"initializer_range", 0.02},
    {"attention_dropout", 0.0},
    {"use_cache", true},
    {"torch_dtype", torch_dtype},
  };
  if (family != model_family::qwen2)
    j["attention_bias"] = attention_bias;
  if (family == model_family::qwen2)
    j["use_sliding_window"] = false;
  if (family == model_family::llama)
    j["mlp_bias"] = false;
  if (rope_scaling.llama3)
    j["rope_scaling"] = {
      {"rope_type", "llama3"},
      {"factor", rope_scaling.factor},
      {"low_freq_factor", rope_scaling.low_freq_factor},
      {"high_freq_factor", rope_scaling.high_freq_factor},
      {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  if (bos_token_id >= 0)
    j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1)
    j["eos_token_id"] = eos_token_ids[0];
  else if (!eos_token_ids.empty())
    j["eos_token_id"] = eos_token_ids;
  return j.dump(2) + "\n";
}

int64_t model_config::parameter_count() const {
  const int64_t q = hidden_size * num_attention_heads * head_dim;
  const int64_t kv = 2 * hidden_size * num_key_value_heads * head_dim;
  const int64_t o = num_attention_heads * head_dim * hidden_size;
  const int64_t bias =
    attention_bias ? (num_attention_heads + 2 * num_key_value_heads) * head_dim : 0;
  const int64_t qk_norm = family == model_family::qwen3 ? 2 * head_dim : 0;
  const int64_t mlp = 3 * hidden_size * intermediate_size;
  const int64_t layer = q + kv + o + bias + qk_norm + mlp + 2 * hidden_size;
  const int64_t embeddings = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2);
  return num_hidden_layers * layer + embeddings + hidden_size;
}

} // namespace pedagogy::models
