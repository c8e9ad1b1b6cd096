// Decoder-only transformer: parameters, loading, saving and the forward pass (see transformer.hpp).
#include "models/tensor/transformer.hpp"

#include "models/tensor/activation_checkpointing.hpp"
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <set>

namespace pedagogy::models {

namespace {

// The safetensors name of a config.json dtype ("bfloat16" -> "BF16").
std::string stored_name(const std::string& torch_dtype) {
  return torch_dtype == "float32" ? "F32" : torch_dtype == "bfloat16" ? "BF16" : "F16";
}

std::string stored_name(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return "F32";
    case at::kBFloat16:
      return "BF16";
    case at::kHalf:
      return "F16";
    case at::kDouble:
      return "F64";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kShort:
      return "I16";
    case at::kChar:
      return "I8";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
    default:
      return at::toString(type);
  }
}

const char* const dtype_rule_hint =
  "every weight must be stored in the dtype config.json's torch_dtype names (the first tensor's "
  "when it names none); converting to the dtype you run in happens once, at loading, only "
  "between float32, bfloat16 and float16: save the checkpoint again in one dtype, or correct "
  "torch_dtype";

// The largest |weight| a checkpoint may hold: float16's largest finite value. Real checkpoints
// stay orders of magnitude below it (projections and embeddings are O(0.01-1); norm weights and
// biases, the largest, stay in the hundreds), and one past it could not even be served in half
// precision, so it is corrupted or diverged: 1e38 is finite in float32, yet turns every logit into
// inf or NaN.
constexpr double max_weight_magnitude = 65504.0;

// Refuses, by file and tensor, the first parameter holding a NaN, an infinity or a magnitude past
// max_weight_magnitude: such weights load and generate garbage, and a NaN student trains to exit
// 0. One reduction per tensor on its own device, and one host sync for the whole model.
void require_sane_weights(const named_tensors& parameters, const checkpoint_reader& reader) {
  if (parameters.empty())
    return;
  std::vector<at::Tensor> peaks; // max |w| of each parameter, NaN when it holds one
  peaks.reserve(parameters.size());
  for (const auto& [name, tensor] : parameters) {
    auto [low, high] = at::aminmax(tensor);
    peaks.push_back(at::maximum(low.neg(), high).to(at::kFloat));
  }
  const at::Tensor all = at::stack(peaks).cpu();
  const float* peak = all.data_ptr<float>();
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (peak[i] <= max_weight_magnitude) // false for NaN
      continue;
    const std::string& name = parameters[i].first;
    const std::string value =
      std::isnan(peak[i]) ? "NaN"
      : std::isinf(peak[i])
        ? "an infinite value"
        : fmt::format("a weight of magnitude {:g}, past {:g} (float16's largest "
                      "value), which no real checkpoint holds",
                      static_cast<double>(peak[i]), max_weight_magnitude);
    throw input_error(reader.file_of(name).string(),
                      fmt::format("tensor '{}' holds {}", name, value),
                      "the checkpoint is corrupted or its training diverged: download the model "
                      "again, or load an earlier checkpoint");
  }
}

std::string dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return "float32";
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    default:
      return at::toString(dtype);
  }
}

} // namespace

int64_t kv_cache::length() const {
  return layers.empty() || !layers[0].k.defined() ? 0 : layers[0].k.size(2);
}

transformer::transformer(model_config config) : config_(std::move(config)) {}

at::Tensor& transformer::add(const std::string& name, at::IntArrayRef shape,
                             at::TensorOptions options) {
  parameters_.emplace_back(name, at::empty(shape, options));
  return parameters_.back().second;
}

void transformer::allocate(at::Device device, at::ScalarType dtype) {
  const auto& c = config_;
  const auto options = at::TensorOptions().device(device).dtype(dtype);
  const int64_t C = c.hidden_size, V = c.vocab_size, F = c.intermediate_size;
  const int64_t H = c.num_attention_heads, K = c.num_key_value_heads, D = c.head_dim;
  parameters_.reserve(static_cast<size_t>(3 + c.num_hidden_layers * 16));
  embed_tokens = add("model.embed_tokens.weight", {V, C}, options);
  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    decoder_layer& layer = layers_[static_cast<size_t>(i)];
    attention& a = layer.self_attn;
    a.heads = H;
    a.kv_heads = K;
    a.head_dim = D;
    a.q_proj = add(p + "self_attn.q_proj.weight", {H * D, C}, options);
    if (c.attention_bias)
      a.q_bias = add(p + "self_attn.q_proj.bias", {H * D}, options);
    a.k_proj = add(p + "self_attn.k_proj.weight", {K * D, C}, options);
    if (c.attention_bias)
      a.k_bias = add(p + "self_attn.k_proj.bias", {K * D}, options);
    a.v_proj = add(p + "self_attn.v_proj.weight", {K * D, C}, options);
    if (c.attention_bias)
      a.v_bias = add(p + "self_attn.v_proj.bias", {K * D}, options);
    a.o_proj = add(p + "self_attn.o_proj.weight", {C, H * D}, options);
    if (c.o_proj_bias())
      a.o_bias = add(p + "self_attn.o_proj.bias", {C}, options);
    if (c.family == model_family::qwen3) {
      a.q_norm = rms_norm{add(p + "self_attn.q_norm.weight", {D}, options), c.rms_norm_eps};
      a.k_norm = rms_norm{add(p + "self_attn.k_norm.weight", {D}, options), c.rms_norm_eps};
    }
    layer.ffn.gate_proj = add(p + "mlp.gate_proj.weight", {F, C}, options);
    layer.ffn.up_proj = add(p + "mlp.up_proj.weight", {F, C}, options);
    layer.ffn.down_proj = add(p + "mlp.down_proj.weight", {C, F}, options);
    layer.input_layernorm = {add(p + "input_layernorm.weight", {C}, options), c.rms_norm_eps};
    layer.post_attention_layernorm = {add(p + "post_attention_layernorm.weight", {C}, options),
                                      c.rms_norm_eps};
  }
  norm_ = {add("model.norm.weight", {C}, options), c.rms_norm_eps};
  if (c.num_labels > 0)
    score_ = add("score.weight", {c.num_labels, C}, options);
  else
    lm_head_ = c.tie_word_embeddings ? embed_tokens : add("lm_head.weight", {V, C}, options);
  inv_freq_ = rope_inverse_frequencies(c).to(device);
}

transformer transformer::random(const model_config& config, uint64_t seed, at::Device device,
                                at::ScalarType dtype) {
  transformer model(config);
  model.allocate(device, dtype);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::NoGradGuard no_grad;
  for (auto& [name, tensor] : model.parameters_) {
    at::Tensor values;
    if (name.ends_with("norm.weight"))
      values = at::ones(tensor.sizes());
    else if (name.ends_with(".bias"))
      values = at::zeros(tensor.sizes());
    else
      values = at::normal(0.0, 0.02, tensor.sizes(), generator);
    tensor.copy_(values);
  }
  return model;
}

transformer transformer::load(const std::filesystem::path& dir, at::Device device,
                              at::ScalarType dtype) {
  transformer model(model_config::load(dir));
  model.allocate(device, dtype);
  auto reader = checkpoint_reader::open(dir);
  std::set<std::string> expected;
  std::string expected_dtype =
    model.config_.torch_dtype.empty() ? "" : stored_name(model.config_.torch_dtype);
  at::NoGradGuard no_grad;
  for (auto& [name, tensor] : model.parameters_) {
    expected.insert(name);
    if (!reader.contains(name))
      throw input_error(reader.path().string(), fmt::format("tensor '{}' is missing", name),
                        "the weights do not match config.json (another model size or family?)");
    at::Tensor stored = reader.tensor(name);
    // One dtype for the whole checkpoint, the one config.json names: a tensor in another dtype
    // means the file and the config disagree, and converting it silently would hide that.
    const std::string stored_dtype = stored_name(stored.scalar_type());
    if (expected_dtype.empty())
      expected_dtype = stored_dtype;
    const bool floating = stored.scalar_type() == at::kFloat ||
                          stored.scalar_type() == at::kBFloat16 ||
                          stored.scalar_type() == at::kHalf;
    if (!floating || stored_dtype != expected_dtype)
      throw input_error(reader.file_of(name).string(),
                        fmt::format("tensor '{}' is stored as {}, but {}", name, stored_dtype,
                                    model.config_.torch_dtype.empty()
                                      ? fmt::format("the tensors before it as {}", expected_dtype)
                                      : fmt::format("config.json's torch_dtype is {} ({})",
                                                    model.config_.torch_dtype, expected_dtype)),
                        dtype_rule_hint);
    if (stored.sizes() != tensor.sizes())
      throw input_error(reader.path().string(),
                        fmt::format("tensor '{}' has shape [{}], config.json implies [{}]", name,
                                    fmt::join(stored.sizes(), ", "),
                                    fmt::join(tensor.sizes(), ", ")),
                        "the weights do not match config.json");
    tensor.copy_(stored);
  }
  require_sane_weights(model.parameters_, reader);
  for (const auto& name : reader.names()) {
    bool tied_head = name == "lm_head.weight" && model.config_.tie_word_embeddings;
    bool rope_buffer = name.ends_with("rotary_emb.inv_freq"); // recomputed, never trained
    if (expected.count(name) == 0 && !tied_head && !rope_buffer)
      throw input_error(reader.path().string(), fmt::format("unexpected tensor '{}'", name),
                        "the weights do not match config.json (another architecture?)");
  }
  return model;
}

void transformer::save(const std::filesystem::path& dir, uint64_t max_shard_bytes) const {
  std::filesystem::create_directories(dir);
  model_config config = config_;
  config.torch_dtype = dtype_name(dtype());
  files::write_atomically(dir / "config.json", config.to_json());
  save_model_weights(dir, parameters_, max_shard_bytes);
}

kv_cache transformer::empty_cache() const {
  kv_cache cache;
  cache.layers.resize(layers_.size());
  return cache;
}

at::Device transformer::device() const {
  return embed_tokens.device();
}

at::ScalarType transformer::dtype() const {
  return embed_tokens.scalar_type();
}

at::Tensor transformer::hidden_states(const at::Tensor& ids, const at::Tensor& attention_mask,
                                      const at::Tensor& positions, kv_cache* cache) const {
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t cached = cache != nullptr ? cache->length() : 0;
  const int64_t S = cached + T;
  const auto device = embed_tokens.device();
  PEDAGOGY_CHECK(!attention_mask.defined() || attention_mask.sizes() == at::IntArrayRef({B, S}),
                 "attention_mask must be [B, cached + T] = [{}, {}]", B, S);

  at::Tensor pos = positions.defined()
                     ? positions.to(device)
                     : at::arange(cached, S, at::TensorOptions().dtype(at::kLong).device(device))
                         .unsqueeze(0)
                         .expand({B, T}); // [B, T]
  // Query i (absolute position cached + i) sees keys 0 .. cached + i that are not padding.
  at::Tensor allowed = at::ones({T, S}, at::TensorOptions().dtype(at::kBool).device(device))
                         .tril(cached)
                         .unsqueeze(0); // [1, T, S]
  if (attention_mask.defined())
    allowed = allowed.logical_and(attention_mask.to(device).to(at::kBool).unsqueeze(1)); // [B,T,S]
  const double lowest = lowest_finite(dtype());
  at::Tensor mask = at::zeros({allowed.size(0), 1, T, S}, embed_tokens.options())
                      .masked_fill(allowed.logical_not().unsqueeze(1), lowest); // [B or 1, 1, T, S]
  mask = mask.expand({B, 1, T, S});

  rope_tables rope = rope_for_positions(inv_freq_, pos, dtype());
  at::Tensor h = at::embedding(embed_tokens, ids.to(device)); // [B, T, C]
  for (size_t i = 0; i < layers_.size(); ++i) {
    const decoder_layer& layer = layers_[i];
    layer_cache* layer_kv = cache != nullptr ? &cache->layers[i] : nullptr;
    if (checkpoint_layers_ && layer_kv == nullptr) {
      // The backward runs the layer again: everything it reads is held by value.
      const decoder_layer* l = &layer;
      h = checkpointed(
        [l, rope, mask](const at::Tensor& x) {
          at::Tensor y =
            x + l->self_attn.forward(l->input_layernorm.forward(x), rope, mask, nullptr);
          return y + l->ffn.forward(l->post_attention_layernorm.forward(y));
        },
        h);
      continue;
    }
    h = h + layer.self_attn.forward(layer.input_layernorm.forward(h), rope, mask, layer_kv);
    h = h + layer.ffn.forward(layer.post_attention_layernorm.forward(h));
  }
  return norm_.forward(h); // [B, T, C]
}

at::Tensor transformer::logits(const at::Tensor& hidden) const {
  PEDAGOGY_CHECK(lm_head_.defined(), "logits() of a sequence-classification model (no lm_head)");
  return at::linear(hidden, lm_head_); // [..., V]
}

const at::Tensor& transformer::lm_head() const {
  PEDAGOGY_CHECK(lm_head_.defined(), "lm_head() of a sequence-classification model");
  return lm_head_;
}

void transformer::require_causal_lm(const std::filesystem::path& dir) const {
  if (is_classifier())
    throw input_error((dir / "config.json").string(),
                      "is a sequence-classification model (a score head, no lm_head), which "
                      "cannot generate",
                      "give a *ForCausalLM model here; a reward model goes in eval.reward_model");
}

void transformer::require_classifier(const std::filesystem::path& dir) const {
  if (!is_classifier())
    throw input_error((dir / "config.json").string(),
                      "is a causal LM, not a sequence-classification model",
                      "a reward model is a *ForSequenceClassification directory with a score "
                      "head; `pedagogy init-model --head classification` writes a random one");
}

at::Tensor transformer::score(const at::Tensor& hidden) const {
  PEDAGOGY_CHECK(score_.defined(), "score() of a causal LM (no score head)");
  return at::linear(hidden, score_); // [..., num_labels]
}

at::Tensor transformer::forward(const at::Tensor& ids, const at::Tensor& attention_mask,
                                const at::Tensor& positions, kv_cache* cache) const {
  return logits(hidden_states(ids, attention_mask, positions, cache));
}

at::Tensor positions_from_mask(const at::Tensor& attention_mask) {
  return (attention_mask.to(at::kLong).cumsum(-1) - 1).clamp_min(0);
}

} // namespace pedagogy::models
