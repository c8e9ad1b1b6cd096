// What the learner reports about one rollout batch (plain numbers, so it can travel in actor
// messages without tensors).
#pragma once

#include <cstdint>

namespace pedagogy::models {

struct learn_report {
  int64_t sequences = 0;
  double trained_tokens = 0;
  int64_t optimizer_steps = 0; // in total, after this batch
  double loss = 0;             // batch objective, mean over the mu passes
  double pg_loss = 0;          // per trained token, mean over passes
  double kl = 0;               // k3 KL to the reference per trained token (0 when beta = 0)
  double clip_fraction = 0;    // share of trained tokens whose clip was taken
  double grad_norm = 0;        // before clipping, mean over passes
  double learning_rate = 0;    // of the last step
  double behaviour_kl = 0;     // mean (behaviour - learner) log-prob on trained tokens, pass 0
  double seconds = 0;
  int64_t skipped_passes = 0; // passes whose update was skipped for a NaN/inf loss or gradient
  // Surprisal-gated imitation (Pedagogical RL), over the imitated sequences' tokens and the passes:
  int64_t imitated_sequences = 0;
  double imitated_tokens = 0;
  double imitation_loss = 0; // weighted cross-entropy per imitated sequence, mean over passes
  double gate_mean = 0;      // mean gate weight w_t
  double gate_min = 0;       // smallest w_t (of this learner's share under data parallelism)
  double gate_below = 0;     // share of tokens with w_t < 1/2 (log p below gamma)
};

} // namespace pedagogy::models
