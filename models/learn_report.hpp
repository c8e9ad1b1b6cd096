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
};

} // namespace pedagogy::models
