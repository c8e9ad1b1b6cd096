// The architecture of a decoder model, read from (and written to) Hugging Face's config.json.
// Families: Qwen2/2.5 (bias on q/k/v), Qwen3 (RMSNorm on q and k per head), Llama-3.x
// (llama3 RoPE frequency scaling). Anything we cannot run exactly is refused with an error, and
// so are sizes no real model has, before anything is allocated.
//
// RoPE settings come in the layouts transformers writes: a top-level rope_theta with an optional
// rope_scaling ({"type" or "rope_type": ...}) in v4, and rope_parameters ({"rope_type",
// "rope_theta", ...}) in v5; a setting given twice must agree.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pedagogy::models {

enum class model_family { qwen2, qwen3, llama };

// Above every released vocabulary (Gemma's 262144 tokens), so that a token id or vocab_size past
// it, in config.json or tokenizer.json, is refused as a typo or a corrupted file before a table
// of that many entries is allocated.
inline constexpr int64_t max_vocab_size = int64_t{1} << 22;

struct rope_scaling_config {
  bool llama3 = false;                             // false: plain RoPE (or linear, below)
  bool linear = false;                             // every frequency divided by `factor`
  double factor = 8.0;                             // llama3: long-wavelength divisor; linear
  double low_freq_factor = 1.0;                    // llama3
  double high_freq_factor = 4.0;                   // llama3
  int64_t original_max_position_embeddings = 8192; // llama3
};

struct model_config {
  model_family family = model_family::qwen2;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0; // hidden_size / num_attention_heads unless given
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  rope_scaling_config rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false; // bias on q/k/v (Qwen2: always), and on o_proj for Llama and Qwen3
  // The dtype the weights are stored in: "float32", "bfloat16" or "float16"; "" = not given.
  std::string torch_dtype = "float32";
  int64_t bos_token_id = -1; // -1 = none
  std::vector<int64_t> eos_token_ids;
  // 0: a causal LM (lm_head). N > 0: *ForSequenceClassification, a linear head `score.weight`
  // [N, hidden] and no lm_head (a reward model); HF spells N as the size of id2label.
  int64_t num_labels = 0;

  // Reads `dir/config.json`; throws input_error naming the file and field.
  static model_config load(const std::filesystem::path& dir);
  static model_config parse(const std::string& json_text, const std::string& where);
  // The config.json text that transformers and our loader both read.
  std::string to_json() const;
  // Total parameter count (tied embeddings counted once).
  int64_t parameter_count() const;
  // Whether o_proj has a bias: transformers' LlamaAttention and Qwen3Attention give it one with
  // attention_bias; Qwen2Attention never does (its q/k/v bias is built in).
  bool o_proj_bias() const {
    return attention_bias && family != model_family::qwen2;
  }
};

std::string to_string(model_family family);
// "qwen2", "qwen3" or "llama"; throws input_error naming `where` otherwise.
model_family family_from_name(const std::string& name, const std::string& where);

} // namespace pedagogy::models
