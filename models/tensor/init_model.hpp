// Random-init Hugging Face model directories for tests, benchmarks and the tiny preset:
// config.json, model.safetensors and tokenizer files, from a family, a size and a seed.
#pragma once

#include "models/weights/model_config.hpp"

#include <ATen/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace pedagogy::models {

struct init_options {
  model_family family = model_family::qwen2;
  // "tiny" (~0.1M parameters), "base" (~25M), "small" (~100M), or explicit dimensions:
  // "hidden=512,layers=8,heads=8,kv_heads=4,ffn=1536[,head_dim=64]".
  std::string preset = "tiny";
  uint64_t seed = 0;
  std::filesystem::path out;
  // A model directory whose tokenizer.json/tokenizer_config.json are copied; "" writes a
  // byte-level tokenizer with the family's chat special tokens.
  std::filesystem::path tokenizer_dir;
  at::ScalarType dtype = at::kFloat;
  bool force = false; // overwrite an existing model directory
  // 0: a causal LM. N > 0: a *ForSequenceClassification model with an N-label score head (a
  // reward model, e.g. the pedagogical reward model's shape with N = 1).
  int64_t num_labels = 0;
};

// The architecture for a preset; `vocab_size` comes from the tokenizer.
model_config preset_config(model_family family, const std::string& preset, int64_t vocab_size);

// tokenizer.json / tokenizer_config.json of the byte-level tokenizer for `family`.
std::string byte_level_tokenizer_json(model_family family);
std::string byte_level_tokenizer_config_json(model_family family);

// Writes the directory; returns its config. Throws input_error for bad options or a directory
// that already holds a model (unless force).
model_config init_model(const init_options& options);

} // namespace pedagogy::models
