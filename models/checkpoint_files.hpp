// The model half of a training checkpoint, shared by GRPO training and SFT: a Hugging Face model
// directory (config.json, the weights, the tokenizer and chat-template files of the model it
// started from), so our loader and transformers both read it, and the AdamW state beside it.
#pragma once

#include "models/optimizer.hpp"
#include "models/transformer.hpp"

#include <filesystem>
#include <string>

namespace pedagogy::models {

// Writes `model` and `optimizer` into `dir`, copying the tokenizer files of `tokenizer_dir`.
// Refuses (std::runtime_error) non-finite weights, which would poison every run resumed from them.
void save_training_checkpoint(const std::filesystem::path& dir, const transformer& model,
                              adamw& optimizer, const std::filesystem::path& tokenizer_dir);

// Restores `optimizer` from `dir`/optimizer.safetensors. Throws input_error naming the file;
// `missing_hint` says what to do when the checkpoint has none.
void load_optimizer_state(adamw& optimizer, const std::filesystem::path& dir,
                          const std::string& missing_hint);

} // namespace pedagogy::models
