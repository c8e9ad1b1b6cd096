// The model half of a training checkpoint, shared by GRPO training and SFT: a Hugging Face model
// directory (config.json, the weights, the tokenizer and chat-template files of the model it
// started from), so our loader and transformers both read it, and the AdamW state beside it:
// optimizer.safetensors, and with ZeRO-1 one optimizer.shard-<r>.safetensors per other learner
// (the metadata of optimizer.safetensors says how many shards there are). The state is named by
// parameter, so a run may resume with another number of learners.
#pragma once

#include "models/tensor/transformer.hpp"
#include "models/training/optimizer.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace pedagogy::models {

// Which part of a sharded optimizer state a learner writes.
struct optimizer_shard {
  int64_t rank = 0;
  int64_t count = 1;
};

// Writes `model` and `optimizer` into `dir`, copying the tokenizer files of `tokenizer_dir`.
// Refuses (std::runtime_error) non-finite weights, which would poison every run resumed from them.
// A learner of shard rank > 0 writes its optimizer shard only (the model is shard 0's to write).
void save_training_checkpoint(const std::filesystem::path& dir, const transformer& model,
                              adamw& optimizer, const std::filesystem::path& tokenizer_dir,
                              optimizer_shard shard = {});

// The optimizer state files of checkpoint `dir`: optimizer.safetensors and its shards. Throws
// input_error for a missing or truncated one.
std::vector<std::filesystem::path> optimizer_files(const std::filesystem::path& dir,
                                                   const std::string& missing_hint);

// Restores `optimizer` (the parameters it owns) from `dir`'s optimizer files. Throws input_error
// naming the file; `missing_hint` says what to do when the checkpoint has none.
void load_optimizer_state(adamw& optimizer, const std::filesystem::path& dir,
                          const std::string& missing_hint);

} // namespace pedagogy::models
