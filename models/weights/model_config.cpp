// Reads and writes config.json for the supported decoder families (see model_config.hpp).
#include "models/weights/model_config.hpp"

#include "models/weights/model_files.hpp"
#include "runtime/errors.hpp"
#include "runtime/json_excerpt.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <utility>

namespace pedagogy::models {

namespace {

using json = nlohmann::json;

// Sizes above every released dense model (Llama-3.1-405B: hidden 16384, 126 layers, 128 heads,
// head_dim 128; Gemma: a 262144-token vocabulary), so a typo or a hostile file is refused before
// it can ask for petabytes, while every model we could run fits with room to spare.
constexpr int64_t max_hidden_size = int64_t{1} << 16;
constexpr int64_t max_intermediate_size = int64_t{1} << 18;
constexpr int64_t max_layers = 1024;
constexpr int64_t max_heads = 1024;
constexpr int64_t max_head_dim = 1024;
constexpr int64_t max_positions = int64_t{1} << 24;
constexpr int64_t max_parameters = int64_t{1} << 41; // ~2.2e12

const std::string not_a_model_hint =
  "the config.json is corrupted or not a decoder model's: compare it with the original";

// A positive integer no larger than `max` at `j[key]`; `name` is how errors call it.
int64_t bounded(const json& j, const char* key, int64_t max, const std::string& where,
                const std::string& name) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() <= 0)
    throw input_error(where,
                      fmt::format("\"{}\" must be a positive integer{}", name,
                                  it == j.end() ? "" : fmt::format(", not {}", it->dump())),
                      not_a_model_hint);
  if (it->get<int64_t>() > max)
    throw input_error(where,
                      fmt::format("\"{}\" = {} is larger than any model we can run (at most {})",
                                  name, it->get<int64_t>(), max),
                      not_a_model_hint);
  return it->get<int64_t>();
}

int64_t bounded(const json& j, const char* key, int64_t max, const std::string& where) {
  return bounded(j, key, max, where, key);
}

// A finite positive number at `j[key]`, or `fallback` when the key is absent.
double positive_number(const json& j, const char* key, double fallback, const std::string& where,
                       const std::string& name) {
  auto it = j.find(key);
  if (it == j.end())
    return fallback;
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() <= 0)
    throw input_error(where, fmt::format("\"{}\" = {} must be a positive number", name, it->dump()),
                      not_a_model_hint);
  return it->get<double>();
}

bool flag(const json& j, const char* key, bool fallback, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return fallback;
  if (!it->is_boolean())
    throw input_error(where, fmt::format("\"{}\" = {} must be true or false", key, it->dump()),
                      not_a_model_hint);
  return it->get<bool>();
}

// A token id in the vocabulary; `name` is "eos_token_id" or "bos_token_id".
int64_t token_id(const json& id, int64_t vocab_size, const std::string& where,
                 const std::string& name) {
  if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= vocab_size)
    throw input_error(where,
                      fmt::format("\"{}\" holds {}, which is not a token id below vocab_size = {}",
                                  name, json_excerpt(id), vocab_size),
                      "the config.json does not belong to these weights, or is corrupted");
  return id.get<int64_t>();
}

// One description of the RoPE settings: v4's rope_scaling or v5's rope_parameters.
struct rope_settings {
  std::string source;          // "rope_scaling" or "rope_parameters"
  std::string type;            // "default", "linear" or "llama3"
  std::optional<double> theta; // v5 keeps it here
  rope_scaling_config scaling;
};

// Reads `j[source]`; refuses what transformers would compute differently from us.
rope_settings read_rope(const json& j, const std::string& source, const std::string& where) {
  const json& s = j.at(source);
  if (!s.is_object())
    throw input_error(where,
                      fmt::format("\"{}\" = {} is not a JSON object", source, json_excerpt(s)),
                      not_a_model_hint);
  rope_settings r;
  r.source = source;
  auto type_at = [&](const char* key) -> std::optional<std::string> {
    auto it = s.find(key);
    if (it == s.end() || it->is_null())
      return std::nullopt;
    if (!it->is_string())
      throw input_error(where, fmt::format("\"{}.{}\" must be a string", source, key),
                        not_a_model_hint);
    return it->get<std::string>();
  };
  auto rope_type = type_at("rope_type");
  auto legacy_type = type_at("type");
  if (rope_type && legacy_type && *rope_type != *legacy_type)
    throw input_error(where,
                      fmt::format("\"{0}.rope_type\" = '{1}' and \"{0}.type\" = '{2}' disagree",
                                  source, *rope_type, *legacy_type),
                      "keep one of them");
  r.type = rope_type ? *rope_type : legacy_type.value_or("default");
  if (s.contains("rope_theta"))
    r.theta = positive_number(s, "rope_theta", 0.0, where, source + ".rope_theta");
  if (s.contains("partial_rotary_factor") &&
      positive_number(s, "partial_rotary_factor", 1.0, where, source + ".partial_rotary_factor") !=
        1.0)
    throw input_error(where, fmt::format("\"{}.partial_rotary_factor\" is not 1", source),
                      "rotating only part of each head is not supported");

  auto required = [&](const char* key) {
    if (!s.contains(key))
      throw input_error(
        where, fmt::format("\"{}.{}\" is missing (rope_type '{}' needs it)", source, key, r.type),
        "transformers cannot load this config.json either: copy the original");
    return positive_number(s, key, 0.0, where, source + "." + key);
  };
  if (r.type == "llama3") {
    r.scaling.llama3 = true;
    r.scaling.factor = required("factor");
    r.scaling.low_freq_factor = required("low_freq_factor");
    r.scaling.high_freq_factor = required("high_freq_factor");
    if (!s.contains("original_max_position_embeddings"))
      required("original_max_position_embeddings");
    r.scaling.original_max_position_embeddings =
      bounded(s, "original_max_position_embeddings", max_positions, where,
              source + ".original_max_position_embeddings");
    if (r.scaling.high_freq_factor <= r.scaling.low_freq_factor)
      throw input_error(where,
                        fmt::format("\"{0}.high_freq_factor\" = {1} is not above "
                                    "\"{0}.low_freq_factor\" = {2}",
                                    source, r.scaling.high_freq_factor, r.scaling.low_freq_factor),
                        "llama3 scaling interpolates between the two: copy the original values");
  } else if (r.type == "linear") {
    r.scaling.linear = true;
    r.scaling.factor = required("factor");
  } else if (r.type != "default") {
    throw input_error(where, fmt::format("\"{}\": rope_type '{}' is not supported", source, r.type),
                      "supported: default, linear and llama3; dynamic, yarn, longrope and the "
                      "others change the frequencies in ways we do not implement");
  }
  return r;
}

bool same_scaling(const rope_scaling_config& a, const rope_scaling_config& b) {
  return a.llama3 == b.llama3 && a.linear == b.linear &&
         (!(a.llama3 || a.linear) ||
          (a.factor == b.factor && a.low_freq_factor == b.low_freq_factor &&
           a.high_freq_factor == b.high_freq_factor &&
           a.original_max_position_embeddings == b.original_max_position_embeddings));
}

// Theta and scaling from whichever layouts the file uses; each place that names them must agree.
void read_rope_settings(const json& j, model_config& c, const std::string& where) {
  std::vector<rope_settings> found;
  for (const char* source : {"rope_scaling", "rope_parameters"})
    if (j.contains(source) && !j[source].is_null())
      found.push_back(read_rope(j, source, where));

  std::vector<std::pair<std::string, double>> thetas;
  if (j.contains("rope_theta") && !j["rope_theta"].is_null())
    thetas.emplace_back("rope_theta", positive_number(j, "rope_theta", 0.0, where, "rope_theta"));
  for (const auto& r : found)
    if (r.theta)
      thetas.emplace_back(r.source + ".rope_theta", *r.theta);
  for (const auto& [name, theta] : thetas)
    if (theta != thetas[0].second)
      throw input_error(where,
                        fmt::format("\"{}\" = {} and \"{}\" = {} disagree", thetas[0].first,
                                    thetas[0].second, name, theta),
                        "transformers reads one of them: keep the one the model was trained with");
  c.rope_theta = thetas.empty() ? 10000.0 : thetas[0].second; // transformers' default

  for (const auto& r : found)
    if (r.type != found[0].type || !same_scaling(r.scaling, found[0].scaling))
      throw input_error(where,
                        fmt::format("\"{}\" ('{}') and \"{}\" ('{}') describe different RoPE "
                                    "settings",
                                    found[0].source, found[0].type, r.source, r.type),
                        "keep the one the model was trained with");
  if (!found.empty())
    c.rope_scaling = found[0].scaling;
  if (j.contains("partial_rotary_factor") &&
      positive_number(j, "partial_rotary_factor", 1.0, where, "partial_rotary_factor") != 1.0)
    throw input_error(where, "\"partial_rotary_factor\" is not 1",
                      "rotating only part of each head is not supported");
}

// "float32", "bfloat16" or "float16" from torch_dtype (v4) or dtype (v5); "" when neither is there.
std::string read_dtype(const json& j, const std::string& where) {
  std::string dtype;
  for (const char* key : {"torch_dtype", "dtype"}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null())
      continue;
    const std::string value = it->is_string() ? it->get<std::string>() : it->dump();
    if (value != "float32" && value != "bfloat16" && value != "float16")
      throw input_error(where, fmt::format("\"{}\" = '{}' is not supported", key, value),
                        "supported: float32, bfloat16, float16 (quantized models are not)");
    if (!dtype.empty() && dtype != value)
      throw input_error(
        where, fmt::format("\"torch_dtype\" = '{}' and \"dtype\" = '{}' disagree", dtype, value),
        "keep the one that names the dtype of the safetensors weights");
    dtype = value;
  }
  return dtype;
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
  const std::string text = read_regular_file(
    path, "point at a Hugging Face model directory (or create one with init-model)");
  return parse(text, path.string());
}

namespace {

// A *ForSequenceClassification config's label count: id2label's size as transformers writes it,
// else num_labels, else transformers' default of 2; 0 for a causal LM.
int64_t read_num_labels(const json& j, const std::string& where) {
  bool classifier = false;
  if (j.contains("architectures") && j["architectures"].is_array())
    for (const json& a : j["architectures"]) {
      if (!a.is_string())
        continue;
      const auto name = a.get<std::string>();
      if (name.ends_with("ForSequenceClassification"))
        classifier = true;
      else if (!name.ends_with("ForCausalLM"))
        throw input_error(where, fmt::format("architecture '{}' is not supported", name),
                          "supported: *ForCausalLM and *ForSequenceClassification (a reward "
                          "model's score head)");
    }
  if (!classifier)
    return 0;
  int64_t labels = 2;
  if (j.contains("id2label") && j["id2label"].is_object())
    labels = static_cast<int64_t>(j["id2label"].size());
  else if (j.contains("num_labels") && j["num_labels"].is_number_integer())
    labels = j["num_labels"].get<int64_t>();
  if (labels < 1 || labels > 4096)
    throw input_error(where, fmt::format("a classifier with {} labels", labels),
                      "id2label (or num_labels) gives the score head's outputs: 1 for a reward "
                      "model");
  return labels;
}

// The decoder family config.json's model_type names.
model_family family_of(const json& j, const std::string& where) {
  const std::string type = j.contains("model_type") && j["model_type"].is_string()
                             ? j["model_type"].get<std::string>()
                             : "";
  if (type == "qwen2")
    return model_family::qwen2;
  if (type == "qwen3")
    return model_family::qwen3;
  if (type == "llama")
    return model_family::llama;
  throw input_error(where, fmt::format("model_type '{}' is not supported", type),
                    "supported: qwen2 (Qwen2, Qwen2.5), qwen3, llama (Llama-3.x)");
}

// The layer and head sizes, each within what we can run.
void read_sizes(const json& j, model_config& c, const std::string& where) {
  c.vocab_size = bounded(j, "vocab_size", max_vocab_size, where);
  c.hidden_size = bounded(j, "hidden_size", max_hidden_size, where);
  c.intermediate_size = bounded(j, "intermediate_size", max_intermediate_size, where);
  c.num_hidden_layers = bounded(j, "num_hidden_layers", max_layers, where);
  c.num_attention_heads = bounded(j, "num_attention_heads", max_heads, where);
  c.num_key_value_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                            ? bounded(j, "num_key_value_heads", max_heads, where)
                            : c.num_attention_heads;
  c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null()
                 ? bounded(j, "head_dim", max_head_dim, where)
                 : c.hidden_size / c.num_attention_heads;
  if (c.head_dim == 0)
    throw input_error(where,
                      fmt::format("hidden_size = {} gives no head_dim for {} heads", c.hidden_size,
                                  c.num_attention_heads),
                      not_a_model_hint);
  c.max_position_embeddings = j.contains("max_position_embeddings")
                                ? bounded(j, "max_position_embeddings", max_positions, where)
                                : int64_t{4096};
}

// The begin and end token ids (eos may be a list).
void read_token_ids(const json& j, model_config& c, const std::string& where) {
  if (j.contains("bos_token_id") && !j["bos_token_id"].is_null())
    c.bos_token_id = token_id(j["bos_token_id"], c.vocab_size, where, "bos_token_id");
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& eos = j["eos_token_id"];
    if (eos.is_array()) {
      for (const json& id : eos)
        c.eos_token_ids.push_back(token_id(id, c.vocab_size, where, "eos_token_id"));
    } else {
      c.eos_token_ids = {token_id(eos, c.vocab_size, where, "eos_token_id")};
    }
  }
}

// Features this decoder does not have: refused by name rather than run wrong.
void refuse_unsupported(const json& j, const std::string& where) {
  if (flag(j, "use_sliding_window", false, where))
    throw input_error(where, "sliding-window attention is not supported",
                      "set use_sliding_window to false (Qwen2.5 checkpoints ship it off)");
  if (flag(j, "mlp_bias", false, where))
    throw input_error(where, "mlp_bias = true is not supported", "Llama-3.x has no MLP bias");
  if (j.contains("quantization_config") && !j["quantization_config"].is_null())
    throw input_error(where, "\"quantization_config\": quantized weights are not supported",
                      "use the model's unquantized float32, bfloat16 or float16 release");
}

// The sizes must fit together.
void check_consistent(const model_config& c, const std::string& where) {
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
  if (c.parameter_count() > max_parameters)
    throw input_error(where,
                      fmt::format("the sizes give {} parameters, more than any model we can run",
                                  c.parameter_count()),
                      not_a_model_hint);
}

} // namespace

model_config model_config::parse(const std::string& json_text, const std::string& where) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw input_error(where, fmt::format("not valid JSON: {}", e.what()),
                      "the file is truncated or corrupted: copy it again");
  }
  if (!j.is_object())
    throw input_error(where, fmt::format("is {}, not a JSON object", j.type_name()),
                      "a config.json holds one object of settings: copy the original");
  model_config c;
  c.family = family_of(j, where);
  try {
    read_sizes(j, c, where);
    c.rms_norm_eps = positive_number(j, "rms_norm_eps", 1e-6, where, "rms_norm_eps");
    read_rope_settings(j, c, where);
    if (j.contains("hidden_act")) {
      const json& act = j["hidden_act"];
      // transformers maps both names to the same SiLU; anything else is another MLP.
      if (!act.is_string() || (act != "silu" && act != "swish"))
        throw input_error(where,
                          fmt::format("\"hidden_act\" = {} is not supported", json_excerpt(act)),
                          "the MLP here is SwiGLU, whose activation is silu");
    }
    c.tie_word_embeddings = flag(j, "tie_word_embeddings", false, where);
    c.num_labels = read_num_labels(j, where);
    c.attention_bias =
      c.family == model_family::qwen2 ? true : flag(j, "attention_bias", false, where);
    c.torch_dtype = read_dtype(j, where);
    read_token_ids(j, c, where);
    refuse_unsupported(j, where);
  } catch (const json::type_error& e) {
    throw input_error(where, fmt::format("a field has the wrong type: {}", e.what()),
                      "compare it with the model's original config.json");
  }
  check_consistent(c, where);
  return c;
}

std::string model_config::to_json() const {
  static const char* prefixes[] = {"Qwen2", "Qwen3", "Llama"};
  const std::string architecture = std::string(prefixes[static_cast<int>(family)]) +
                                   (num_labels > 0 ? "ForSequenceClassification" : "ForCausalLM");
  json j = {
    {"architectures", {architecture}},
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
  };
  if (!torch_dtype.empty())
    j["torch_dtype"] = torch_dtype;
  if (family != model_family::qwen2)
    j["attention_bias"] = attention_bias;
  if (family == model_family::qwen2)
    j["use_sliding_window"] = false;
  if (family == model_family::llama)
    j["mlp_bias"] = false;
  if (rope_scaling.linear)
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", rope_scaling.factor}};
  if (rope_scaling.llama3)
    j["rope_scaling"] = {
      {"rope_type", "llama3"},
      {"factor", rope_scaling.factor},
      {"low_freq_factor", rope_scaling.low_freq_factor},
      {"high_freq_factor", rope_scaling.high_freq_factor},
      {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  if (num_labels > 0) {
    json id2label = json::object(), label2id = json::object();
    for (int64_t i = 0; i < num_labels; ++i) {
      id2label[std::to_string(i)] = fmt::format("LABEL_{}", i);
      label2id[fmt::format("LABEL_{}", i)] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
  }
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
  const int64_t o_bias = o_proj_bias() ? hidden_size : 0;
  const int64_t qk_norm = family == model_family::qwen3 ? 2 * head_dim : 0;
  const int64_t mlp = 3 * hidden_size * intermediate_size;
  const int64_t layer = q + kv + o + bias + o_bias + qk_norm + mlp + 2 * hidden_size;
  const int64_t head = num_labels > 0 ? num_labels * hidden_size
                                      : (tie_word_embeddings ? 0 : vocab_size * hidden_size);
  return num_hidden_layers * layer + vocab_size * hidden_size + head + hidden_size;
}

} // namespace pedagogy::models
