// The learner's work on one rollout batch, without actors: mu passes of GRPO over the batch in
// micro-batches with gradient accumulation, gradient clipping and an AdamW step per pass. The
// importance ratio compares with the behaviour log-probs recorded at sampling time (equal to
// the policy's own when on-policy, and the right reference when rollouts are one step stale).
#pragma once

#include "models/grpo.hpp"
#include "models/learn_report.hpp"
#include "models/main_grads.hpp"
#include "models/optimizer.hpp"
#include "models/ped.hpp"
#include "models/training_batch.hpp"
#include "models/transformer.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pedagogy::models {

struct learner_options {
  grpo_options grpo;
  adamw_options adam;
  double learning_rate = 5e-7;
  schedule lr_schedule = schedule::constant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0; // optimizer steps of the whole run, for the cosine schedule
  double max_grad_norm = 1.0;
  int64_t micro_batch_size = 2;
  int64_t mu = 2;
  double temperature = 1.0; // the tutor's sampling temperature (log-probs divide by it)
  // Tokens whose logits exist at once when log-probs are taken (models/token_logprobs.hpp);
  // 0 = the whole batch's at once.
  int64_t logprob_chunk = 1024;
  // The PPO ratio's denominator: false = the behaviour log-probs recorded at sampling; true = the
  // learner's own under its weights before the first pass (what verl does; needed when the
  // generator samples in another precision).
  bool recompute_old_logprobs = false;
  // The policy's and reference's weights and compute: float32, or bfloat16 with float32 master
  // weights and moments in the optimizer (the policy must be loaded in this dtype). bf16 halves
  // weights and activations; the masters keep updates of lr 5e-7 from vanishing below bf16's 8
  // bits of mantissa, and the gradients accumulate over micro-batches in float32 buffers
  // (models/main_grads.hpp) for the same reason.
  at::ScalarType dtype = at::kFloat;
  // ZeRO-1: this learner's place among `shard_count` data-parallel learners that split the
  // optimizer state (masters and moments) between them; 1 = every learner keeps all of it.
  int64_t shard_rank = 0;
  int64_t shard_count = 1;
  // Decoder layers recomputed in the backward (models/checkpointing.hpp); auto = on a GPU.
  enum class checkpointing { auto_, on, off } activation_checkpointing = checkpointing::auto_;
  // A pass whose loss or gradient norm is NaN/inf never reaches the optimizer. false: learn()
  // throws non_finite_error; true: that pass and the rest of the batch are skipped.
  bool skip_non_finite = false;
  // Sequences with an imitation weight (Pedagogical RL) are trained by surprisal-gated imitation
  // with this gate instead of GRPO; their loss, times the weight, is averaged over them and added
  // to the GRPO objective of the rest.
  gate_options gate;
};

// The other data-parallel learner ranks, as the learner sees them: sums across all of them
// (every rank calls each sum in the same order, as with any collective).
class data_parallel {
public:
  virtual ~data_parallel() = default;
  virtual int64_t size() const = 0;
  // In-place sum of a few statistics.
  virtual void sum(std::vector<double>& values) = 0;
  // In-place sum of floating-point tensors (the gradients), in float32 buckets.
  virtual void sum(const std::vector<at::Tensor>& tensors) = 0;
  // Every rank's `tensors` become rank `root`'s (ZeRO-1: the parameters `root` updated).
  virtual void broadcast(const std::vector<at::Tensor>& tensors, int64_t root) = 0;
  // One rank failed where the others go on into the next sum: end the whole job, saying why.
  [[noreturn]] virtual void abort(const std::string& why) = 0;
};

// A pass produced a NaN/inf loss or gradient; the weights were not updated by it.
class non_finite_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class learner {
public:
  // `policy` becomes trainable (its parameters in options.dtype); `reference` is needed when
  // beta > 0.
  learner(transformer policy, std::optional<transformer> reference, learner_options options);

  // GRPO on `batch`. With `peers`, `batch` is this rank's share of the rollout batch: the loss is
  // weighted by the whole batch's token and sequence counts and the gradients are summed across
  // the ranks before clipping, so every rank takes the step one learner would take on the whole
  // batch, and the report describes the whole batch.
  learn_report learn(const std::vector<training_sequence>& batch, data_parallel* peers = nullptr);

  // Pedagogical RL's scoring pass: the spike-aware learnability of each sequence's trained
  // tokens under the current weights, without gradients (models/ped.hpp).
  std::vector<ped_score> score(const std::vector<training_sequence>& batch,
                               const spike_options& options) const;

  const transformer& policy() const {
    return policy_;
  }
  adamw& optimizer() {
    return *optimizer_;
  }
  const learner_options& options() const {
    return options_;
  }

  // Called after every micro-batch of learn() with the micro-batches done and the total (mu
  // passes included), for progress reports; none by default.
  void on_progress(std::function<void(int64_t done, int64_t total)> progress) {
    progress_ = std::move(progress);
  }

private:
  transformer policy_;
  std::optional<transformer> reference_;
  learner_options options_;
  named_tensors parameters_;    // the policy's, requiring gradients
  std::vector<int64_t> owners_; // ZeRO-1: the learner that updates each parameter; empty = this
  std::unique_ptr<adamw> optimizer_;
  std::unique_ptr<main_grads> grads_; // every parameter's float32 gradient, which all steps read
  std::function<void(int64_t, int64_t)> progress_;
};

} // namespace pedagogy::models
