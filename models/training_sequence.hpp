// One dialog as the learner trains on it: the tutor's exact ids, where it sampled, the
// behaviour log-probs, and the dialog's advantage. Plain vectors, so it travels in messages.
#pragma once

#include <cstdint>
#include <vector>

namespace pedagogy::models {

struct training_sequence {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trained;          // 1 where the tutor sampled the token
  std::vector<float> behaviour_logprobs; // log-prob of each token when it was sampled (0 else)
  double advantage = 0;
};

} // namespace pedagogy::models
