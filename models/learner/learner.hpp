// The learner's work on one rollout batch, without actors: mu passes of GRPO over the batch in
// micro-batches with gradient accumulation, gradient clipping and an AdamW step per pass. The
// importance ratio compares with the behaviour log-probs recorded at sampling time (equal to
// the policy's own when on-policy, and the right reference when rollouts are one step stale).
#pragma once

#include "collectives/data_parallel.hpp"
#include "models/ped/imitation.hpp"
#include "models/ped/ped.hpp"
#include "models/tensor/transformer.hpp"
#include "models/training/grpo.hpp"
#include "models/training/learn_report.hpp"
#include "models/training/main_grads.hpp"
#include "models/training/optimizer.hpp"
#include "models/training/training_batch.hpp"

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
  // Tokens whose logits exist at once when log-probs are taken (models/tensor/token_logprobs.hpp);
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
  // (models/training/main_grads.hpp) for the same reason.
  at::ScalarType dtype = at::kFloat;
  // ZeRO-1: this learner's place among `shard_count` data-parallel learners that split the
  // optimizer state (masters and moments) between them; 1 = every learner keeps all of it.
  int64_t shard_rank = 0;
  int64_t shard_count = 1;
  // Decoder layers recomputed in the backward (models/tensor/activation_checkpointing.hpp); auto =
  // on a GPU.
  enum class checkpointing { auto_, on, off } activation_checkpointing = checkpointing::auto_;
  // A pass whose loss or gradient norm is NaN/inf never reaches the optimizer. false: learn()
  // throws non_finite_error; true: that pass and the rest of the batch are skipped.
  bool skip_non_finite = false;
  // Sequences with an imitation weight (Pedagogical RL) are trained by surprisal-gated imitation
  // with this gate instead of GRPO; their loss, times the weight, is averaged over them and added
  // to the GRPO objective of the rest.
  gate_options gate;
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
  // tokens under the current weights, without gradients (models/ped/ped.hpp).
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
  // A batch cut into micro-batches, with the whole batch's counts (across learners).
  struct micro_batches {
    std::vector<padded_batch> micro;
    batch_shape shape;
    double imitated = 0; // sequences trained by imitation, in the whole batch
  };
  // The log-probs that stay fixed over the passes, per micro-batch: the ratio's denominator and
  // the frozen reference's (undefined when beta = 0).
  struct fixed_logprobs {
    std::vector<at::Tensor> old, reference;
  };
  // A pass's statistics, read from the device once at its end (and summed over passes).
  struct pass_sums {
    grpo_stats grpo;
    double objective = 0;
    double behaviour_gap = 0; // behaviour minus learner log-probs on GRPO tokens (first pass)
    gate_sums gate;
  };

  micro_batches lay_out(const std::vector<training_sequence>& batch, data_parallel* peers) const;
  fixed_logprobs fixed_logprobs_of(const micro_batches& batch) const;
  // Forward and backward over every micro-batch, gradients accumulated in grads_.
  pass_sums run_pass(const micro_batches& batch, const fixed_logprobs& fixed, int64_t pass);
  // The gradients the optimizer reads: summed across learners (and `objective` with them).
  std::vector<at::Tensor> reduce(data_parallel* peers, double& objective);
  // AdamW on every parameter this learner owns; with ZeRO-1, every learner gets all of them.
  void update(const std::vector<at::Tensor>& grads, data_parallel* peers, learn_report& report);
  void finish_report(learn_report& report, pass_sums totals, const micro_batches& batch,
                     int64_t computed_passes, data_parallel* peers) const;

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
