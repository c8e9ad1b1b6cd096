// The imitation term of a learner's micro-batch (Pedagogical RL, ped.hpp's surprisal-gated
// imitation): rows with an imitation weight are trained to imitate their sampled tokens instead of
// by GRPO; their loss, times the weight, is averaged over the batch's imitated sequences and added
// to the GRPO objective of the other rows. The gate's statistics stay on the device until the
// learner reads a pass's sums once.
#pragma once

#include "models/ped/ped.hpp"
#include "models/training/training_batch.hpp"

#include <ATen/Tensor.h>

namespace pedagogy::models {

// The gate's statistics over imitated tokens, on the host: summed over micro-batches, passes
// and data-parallel learners (`min` excepted, the smallest weight seen).
struct gate_sums {
  double tokens = 0; // imitated tokens
  double weight = 0; // sum of their gate weights w_t
  double below = 0;  // tokens with w_t < 1/2
  double loss = 0;   // sum over imitated rows of their gated imitation loss
  double min = 1;    // smallest w_t (1 when none)
};

struct imitation_term {
  at::Tensor objective; // scalar to add to the micro-batch's objective (carries the gradient)
  at::Tensor sums;      // [4] float64, no gradient: gate_sums' tokens, weight, below, loss
  at::Tensor min;       // [] float64: the smallest w_t on the imitated tokens (1 when none)
};

// Rows of `m` whose `imitation` weight is positive, given the learner's log-probs `logp` [B, T - 1]
// (with gradient), the rows' `imitating` indicator [B, 1] and the whole batch's count of imitated
// sequences (across data-parallel learners) that averages the loss.
imitation_term imitation_micro_batch(const at::Tensor& logp, const padded_batch& m,
                                     const at::Tensor& imitating, double imitated_in_batch,
                                     const gate_options& gate);

} // namespace pedagogy::models
