// One dialog as the learner trains on it: the tutor's exact ids, where it sampled, the
// behaviour log-probs, and the dialog's advantage (or its imitation weight). Plain vectors, so it
// travels in messages.
#pragma once

#include <cstdint>
#include <vector>

namespace pedagogy::models {

struct training_sequence {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trained;          // 1 where the tutor sampled the token
  std::vector<float> behaviour_logprobs; // log-prob of each token when it was sampled (0 else)
  double advantage = 0;
  // > 0: a ped_teacher trajectory the policy imitates (surprisal-gated, models/ped/ped.hpp) with
  // this weight, instead of a GRPO sequence (Pedagogical RL's rescue, mix and rounds modes).
  double imitation = 0;
  // 1 on the tokens that spell the answer (for the gap-on-the-answer metric); empty = none.
  std::vector<uint8_t> answer;
};

} // namespace pedagogy::models
