// The numerics of privileged-information Pedagogical RL (Chakraborty, Ziems, Huang, Jiang, Bedi,
// Khattab 2026, "Pedagogical RL: Teaching Models to Teach Themselves from Privileged
// Information"; the formulas as ../shared/reference/privileged_pedagogical_rl.md §3 and §5 give
// them). Two roles: `ped_teacher` samples with the privileged context c (the answer) in view,
// `ped_learner` is the policy trained to do without it.
//
//   Surprise gap of a sampled token under the frozen ped_learner, in the learner's own view:
//     d_t = max_a z_t[a] - z_t[tau_t]          (raw logits / T: the log-softmax normaliser cancels,
//                                               so only a max-reduce and a gather are needed)
//   Spike-aware learnability over the policy tokens (mask m):
//     SoftMax_beta(d) = (1/beta) log( (1/|m|) sum_t m_t exp(beta d_t) )   beta->0: mean, ->inf: max
//     G = exp(-lambda SoftMax_beta(d))  in (0, 1];  1 exactly when every token is greedy
//   The ped_teacher's reward: R * G (product, the default), or R - lambda_add * NLL (the additive
//   ablation, NLL = mean -log p over the policy tokens).
//
//   Surprisal-gated imitation of a kept trajectory by the ped_learner:
//     w_t = sigmoid(kappa (log p_t - gamma)), detached, recomputed from the current weights
//     L   = sum_t w_t (-log p_t) / sum_t w_t        per sequence, then averaged
#pragma once

#include "models/ped/ped_score.hpp"

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace pedagogy::models {

class transformer;
struct padded_batch;

struct spike_options {
  double beta = 5.0;        // sharpness of the soft maximum
  double lambda = 0.5;      // penalty strength
  double temperature = 1.0; // the gap is taken on logits / temperature
  double max_gap = 0.0;     // clip each d_t at this many nats; 0 = no clip
};

// SoftMax_beta of `gaps` over the positions where `mask` is 1, per row: [B, T] -> [B]. A row
// with an empty mask gets 0. beta = 0 is the plain mean.
at::Tensor soft_max_gap(const at::Tensor& gaps, const at::Tensor& mask, double beta);

// G = exp(-lambda SoftMax_beta(d)) per row: [B]. A row with an empty mask gets 0 (nothing was
// produced: there is nothing to learn from).
at::Tensor learnability(const at::Tensor& gaps, const at::Tensor& mask, const spike_options& o);

// The gap and the log-prob of each next token: logits [B, T, V] for ids [B, T] give [B, T - 1]
// tensors (column t is about ids[:, t + 1]), float32, without a [B, T, V] log-softmax.
struct token_gaps {
  at::Tensor gap;  // d_t >= 0
  at::Tensor logp; // log p_t of the sampled token
};
token_gaps next_token_gaps(const at::Tensor& logits, const at::Tensor& ids, double temperature);

// The scoring pass: a no-grad forward of `model` over `batch`, the LM head applied `chunk`
// positions at a time (so the logits in memory are [B, chunk, V], never [B, T, V]).
token_gaps score_tokens(const transformer& model, const padded_batch& batch, double temperature,
                        int64_t chunk = 64);

// Per-row scores of a scored batch: `mask` [B, T - 1] marks the policy tokens, `answer` the
// answer's tokens (undefined = none marked).
std::vector<ped_score> summarise_scores(const token_gaps& scored, const at::Tensor& mask,
                                        const at::Tensor& answer, const spike_options& o);

struct gate_options {
  double kappa = 2.0;  // slope of the gate
  double gamma = -3.5; // log-prob at which a token gets weight 1/2
  bool gating = true;  // false: every token weighs 1 (plain rejection-sampling SFT, the ablation)
};

// w_t = sigmoid(kappa (logp - gamma)) on the mask, detached: [B, T].
at::Tensor imitation_weights(const at::Tensor& logp, const at::Tensor& mask, const gate_options& o);

// sum_t w_t (-logp_t) / sum_t w_t per row: [B], carrying the gradient of `logp` with w held
// constant. A row whose weights sum to 0 gives 0.
at::Tensor gated_imitation(const at::Tensor& logp, const at::Tensor& mask, const gate_options& o);

} // namespace pedagogy::models
