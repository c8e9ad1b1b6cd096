// A decoder-only transformer as in Hugging Face's Qwen2ForCausalLM, Qwen3ForCausalLM and
// LlamaForCausalLM: token embedding, N pre-norm blocks (RMSNorm -> attention -> residual,
// RMSNorm -> SwiGLU -> residual), a final RMSNorm and the LM head (tied to the embedding or not).
//
// Parameters are plain tensors stored under the checkpoint's own names
// ("model.layers.0.self_attn.q_proj.weight"), so loading and saving are name lookups, and the
// learner, the optimizer and the weight channel all see the same tensors the forward uses.
#pragma once

#include "models/tensor/attention.hpp"
#include "models/tensor/mlp.hpp"
#include "models/tensor/rms_norm.hpp"
#include "models/weights/model_config.hpp"

#include <ATen/Tensor.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pedagogy::models {

struct decoder_layer {
  rms_norm input_layernorm;
  attention self_attn;
  rms_norm post_attention_layernorm;
  mlp ffn;
};

// The keys and values of every layer for the tokens a batch has seen so far.
struct kv_cache {
  std::vector<layer_cache> layers;
  int64_t length() const; // S: tokens cached
};

class transformer {
public:
  transformer(transformer&&) = default;
  transformer& operator=(transformer&&) = default;
  transformer(const transformer&) = delete; // a copy would silently share the weights
  transformer& operator=(const transformer&) = delete;

  // Reads config.json and the safetensors weights; every parameter must be present with its
  // shape and no unknown tensor may remain (a tied lm_head.weight is accepted and ignored).
  static transformer load(const std::filesystem::path& dir, at::Device device,
                          at::ScalarType dtype);
  // Seeded initialisation as transformers does it: normal(0, 0.02) for matrices, zero biases,
  // unit norms; drawn on the CPU in float32, so every device and dtype starts from the same values.
  static transformer random(const model_config& config, uint64_t seed, at::Device device,
                            at::ScalarType dtype);

  // Writes config.json and model.safetensors (sharded past `max_shard_bytes`).
  void save(const std::filesystem::path& dir, uint64_t max_shard_bytes = 5ull << 30) const;

  // ids [B, T]; attention_mask [B, S] with 1 for tokens and 0 for padding, S = cached + T
  // (undefined = no padding); positions [B, T] (undefined = cached .. cached + T - 1); a non-null
  // cache is extended by these tokens. Returns the final hidden states [B, T, C].
  at::Tensor hidden_states(const at::Tensor& ids, const at::Tensor& attention_mask,
                           const at::Tensor& positions, kv_cache* cache) const;

  // [..., C] -> [..., V]; pick the positions you need before calling. A causal LM only.
  at::Tensor logits(const at::Tensor& hidden) const;
  // [..., C] -> [..., num_labels]: the score head of a sequence-classification model (a reward
  // model), raw logits; pick the pooled positions (the last token) before calling.
  at::Tensor score(const at::Tensor& hidden) const;
  // The LM head's weight [V, C] (the embedding itself when tied). A causal LM only.
  const at::Tensor& lm_head() const;
  bool is_classifier() const {
    return config_.num_labels > 0;
  }
  // Throws input_error naming `dir` (where it was loaded from) unless this is a causal LM, as a
  // generator and a learner need; or unless it is a classifier, for a reward model.
  void require_causal_lm(const std::filesystem::path& dir) const;
  void require_classifier(const std::filesystem::path& dir) const;
  // hidden_states followed by logits for every position: [B, T, V].
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& attention_mask = {},
                     const at::Tensor& positions = {}, kv_cache* cache = nullptr) const;

  kv_cache empty_cache() const;
  const model_config& config() const {
    return config_;
  }
  // Every parameter under its checkpoint name, in a fixed order (lm_head left out when tied).
  const std::vector<std::pair<std::string, at::Tensor>>& named_parameters() const {
    return parameters_;
  }
  at::Device device() const;
  at::ScalarType dtype() const;

  // The parts a forward over another cache layout reads (models/serving/packed_forward.cpp).
  const at::Tensor& embedding() const {
    return embed_tokens;
  }
  const std::vector<decoder_layer>& layers() const {
    return layers_;
  }
  const rms_norm& final_norm() const {
    return norm_;
  }
  // Rotary tables for `positions` [B, T] on the model's device, in its dtype.
  rope_tables rope_at(const at::Tensor& positions) const {
    return rope_for_positions(inv_freq_, positions, dtype());
  }

  // Whether hidden_states() checkpoints each decoder layer when gradients are recorded (the
  // learner's choice: less memory, one more forward per layer in the backward).
  void set_activation_checkpointing(bool on) {
    checkpoint_layers_ = on;
  }

private:
  explicit transformer(model_config config);
  // Creates uninitialised parameters and wires the layers to them.
  void allocate(at::Device device, at::ScalarType dtype);
  at::Tensor& add(const std::string& name, at::IntArrayRef shape, at::TensorOptions options);

  model_config config_;
  std::vector<std::pair<std::string, at::Tensor>> parameters_;
  at::Tensor embed_tokens; // [V, C]
  std::vector<decoder_layer> layers_;
  rms_norm norm_;
  at::Tensor lm_head_;  // [V, C], the embedding itself when tied; undefined for a classifier
  at::Tensor score_;    // [num_labels, C] for a classifier
  at::Tensor inv_freq_; // [D/2] float32
  bool checkpoint_layers_ = false;
};

// Positions for left- or right-padded rows: the count of real tokens before each one.
at::Tensor positions_from_mask(const at::Tensor& attention_mask); // [B, S] -> [B, S]

} // namespace pedagogy::models
