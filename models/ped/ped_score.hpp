// One trajectory's Pedagogical RL scores (models/ped/ped.hpp), as plain numbers so that they travel
// in actor messages without tensors.
#pragma once

namespace pedagogy::models {

struct ped_score {
  double g = 0;            // G_spike; 0 without policy tokens
  double soft_max_gap = 0; // SoftMax_beta(d)
  double mean_gap = 0;
  double max_gap = 0;
  double nll = 0;    // mean -log p over the policy tokens
  double tokens = 0; // policy tokens scored
  // The mean gap on the tokens the sequence marks as the answer's (-1 when it marks none): a
  // ped_teacher that still leans on c shows large gaps exactly there.
  double answer_gap = -1;
  double answer_max_gap = -1; // the largest gap on an answer token (-1 when none is marked)
};

} // namespace pedagogy::models
