// GRPO for multi-turn dialogs: the loss the learner minimises, in one readable place.
//
//   Group advantages (Shao et al. 2024, "DeepSeekMath", arXiv 2402.03300, §4.1.2): the G
//   dialogs of a problem form a group; A_i = R_i - mean(R), divided by std(R) + eps when
//   scale_rewards (the reference uses the unbiased std and eps = 1e-4). One advantage per
//   dialog, shared by every token the tutor sampled in it.
//
//   Per token t (PPO-clip, Schulman et al. 2017, arXiv 1707.06347):
//     ratio_t = exp(logp_t - old_logp_t)
//     pg_t    = -min(ratio_t A, clamp(ratio_t, 1 - eps, 1 + eps_high) A)
//     kl_t    = exp(ref_t - logp_t) - (ref_t - logp_t) - 1        (k3, Schulman 2020)
//     loss_t  = pg_t + beta kl_t
//   with logp = log_softmax(logits / T) at the sampled token (T the sampling temperature).
//
//   Aggregation over the trained tokens (mask m) of the whole rollout batch:
//     token_mean              sum_t loss_t m_t / sum_t m_t                     (default)
//     sequence_mean           mean over sequences of (sum_t loss_t m_t / sum_t m_t)
//     micro_batch_token_mean  mean over micro-batches of their token means     (the reference)
//   The batch is split into micro-batches; each micro-batch's part of the objective is computed
//   with weights that make the gradients accumulated over all micro-batches equal the gradient
//   of the batch objective above, so the micro-batch size changes memory, not the maths.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace pedagogy::models {

enum class aggregation { token_mean, sequence_mean, micro_batch_token_mean };

struct grpo_options {
  double epsilon = 0.2;
  double epsilon_high = 0.0; // 0 = epsilon
  double beta = 0.0;         // k3 KL weight; 0 = no reference log-probs needed
  bool scale_rewards = true;
  double std_eps = 1e-4;
  aggregation reduce = aggregation::token_mean;
};

// Advantages of rewards laid out group after group (G consecutive entries per problem).
std::vector<double> group_advantages(const std::vector<double>& rewards, int64_t group_size,
                                     bool scale_rewards, double std_eps);

// How one micro-batch sits in the rollout batch, for the aggregation weights.
struct batch_shape {
  double batch_tokens = 0;     // trained tokens in the whole batch
  int64_t batch_sequences = 0; // sequences in the whole batch
  int64_t micro_batches = 1;   // micro-batches the batch is split into
};

// Statistics of one micro-batch, summed over its trained tokens (divide by `tokens`).
struct grpo_stats {
  double tokens = 0;
  double pg_loss = 0; // sum of pg_t
  double kl = 0;      // sum of kl_t (0 when beta = 0)
  double clipped = 0; // tokens whose clipped term was the one taken
  double ratio = 0;   // sum of ratio_t
};

struct grpo_loss {
  at::Tensor objective; // scalar: this micro-batch's share of the batch objective
  // [5] float64 on the log-probs' device, in grpo_stats' order: a learner adds these up and
  // reads them once per pass instead of syncing the host per micro-batch.
  at::Tensor sums;
  grpo_stats stats() const; // the host copy (one sync)
};

// logp, old_logp, ref_logp, mask: [B, T] (ref_logp undefined when beta = 0; mask 1 where the
// token is trained); advantages: [B]. `logp` carries the gradient.
grpo_loss grpo_micro_batch(const at::Tensor& logp, const at::Tensor& old_logp,
                           const at::Tensor& ref_logp, const at::Tensor& mask,
                           const at::Tensor& advantages, const grpo_options& options,
                           const batch_shape& shape);

// log_softmax(logits / temperature) at the next token: logits [B, T, V] for ids [B, T] gives
// [B, T - 1], entry t being the log-prob of ids[:, t + 1].
at::Tensor next_token_logprobs(const at::Tensor& logits, const at::Tensor& ids, double temperature);

} // namespace pedagogy::models
