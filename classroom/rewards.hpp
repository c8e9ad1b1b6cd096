// The reward of one dialog (classroom.md §3.4-3.6), every term kept for the record:
//
//   R = end + thinking + end_marker + length
//   end        = r_sol (mean correctness of the K solutions), minus lambda if any judge rejected
//                (soft mode); -lambda when a rejection ended the dialog without solutions (hard)
//   thinking   = -penalty per tutor turn whose <think> tags do not balance
//                + bonus x (share of tutor turns with a closed <think> block); 0 without solutions
//   end_marker = bonus when the tutor ended the dialog with <end_of_conversation>; 0 without
//                solutions (the reference also paid it for a student's marker: fixed on purpose)
//   length     = -penalty when any tutor turn reached max_tokens_per_turn - 1 tokens (always)
#pragma once

#include "classroom/conversation.hpp"

#include <cstdint>
#include <optional>

namespace pedagogy::classroom {

struct reward_weights {
  double rejection_penalty = 0.25; // lambda
  double end_marker_bonus = 0.1;
  double length_penalty = 0.5;
  double thinking_unbalanced_penalty = 0.5;
  double thinking_bonus = 0.5;
  int64_t max_tokens_per_turn = 1024;
};

struct reward_breakdown {
  std::optional<double> solve_rate; // r_sol; none when no solutions were sampled
  double end = 0;
  double thinking = 0;
  double end_marker = 0;
  double length = 0;
  double total = 0;
};

// The reward of a finished dialog (phase done).
reward_breakdown dialog_reward(const conversation& dialog, const reward_weights& weights);

} // namespace pedagogy::classroom
