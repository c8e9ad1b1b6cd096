// Supervised fine-tuning of a causal LM on masked chat examples: the summed negative
// log-likelihood of the trained tokens of a micro-batch, optimizer steps that take the token
// mean over every micro-batch of the step (gradient accumulation), the validation loss, and the
// checkpoint files, in the same Hugging Face layout GRPO training writes.
//
//   loss(step) = - sum over trained tokens t of the step's micro-batches of log p(x_t | x_<t)
//                / (trained tokens of the step)
//
// A packed row runs through transformer::forward_packed with one segment per example, each with
// a cache of its own and positions from 0, so no token attends to another example; a bucketed
// micro-batch is right-padded. Both give each example the log-probs it would get alone.
// The weights train in float32 with the learner's AdamW, clipping and schedule
// (models/training/optimizer.hpp).
#pragma once

#include "models/sft/sft_batches.hpp"
#include "models/tensor/transformer.hpp"
#include "models/training/optimizer.hpp"

#include <ATen/Tensor.h>

#include <filesystem>
#include <stdexcept>

namespace pedagogy::models {

// Summed NLL of the trained tokens of `batch` (a scalar, with gradient when the weights require
// it) and how many there are. `packed` says how its rows are laid out (see sft_batches.hpp).
struct sft_nll {
  at::Tensor sum;
  int64_t tokens = 0; // trained tokens
  int64_t seen = 0;   // tokens through the model (padding excluded)
};
sft_nll micro_batch_nll(const transformer& model, const std::vector<sft_example>& examples,
                        const sft_micro_batch& batch, bool packed);

struct sft_options {
  adamw_options adam;
  double learning_rate = 2e-5;
  schedule lr_schedule = schedule::cosine;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;
  double max_grad_norm = 1.0; // 0 = no clipping
  bool packed = true;
};

struct sft_step_report {
  double loss = 0;          // token-mean NLL of the step's trained tokens, before the update
  double grad_norm = 0;     // before clipping
  double learning_rate = 0; // used by this step
  int64_t trained_tokens = 0;
  int64_t tokens = 0;          // through the model
  int64_t optimizer_steps = 0; // in total, after this step
};

// A NaN/inf loss or gradient; the weights were not updated.
class sft_non_finite : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class sft_learner {
public:
  // `model` becomes trainable; its parameters must be float32.
  sft_learner(transformer model, sft_options options);

  // One optimizer step over `micro_batches` of `examples`.
  sft_step_report step(const std::vector<sft_example>& examples,
                       const std::vector<sft_micro_batch>& micro_batches);

  // Token-mean NLL over the trained tokens of `micro_batches`, without gradients.
  double evaluate(const std::vector<sft_example>& examples,
                  const std::vector<sft_micro_batch>& micro_batches) const;

  const transformer& model() const {
    return model_;
  }
  adamw& optimizer() {
    return *optimizer_;
  }

  // A checkpoint's model and optimizer: config.json and the weights, the tokenizer files of
  // `tokenizer_dir`, optimizer.safetensors (with the step count). Refuses non-finite weights.
  void save(const std::filesystem::path& dir, const std::filesystem::path& tokenizer_dir) const;
  // Restores the optimizer from a checkpoint save() wrote (the weights are loaded with the
  // model). Throws input_error naming the file.
  void load_optimizer(const std::filesystem::path& dir);

private:
  transformer model_;
  sft_options options_;
  named_tensors parameters_;
  std::unique_ptr<adamw> optimizer_;
};

} // namespace pedagogy::models
