// Judges without a model: deterministic rules standing in for a judge LLM (tests, the tiny
// preset, cheap ablations). Only the answer-leak rule has one:
//
//   does_not_leak_answer: REJECT when the reference answer appears in a tutor turn as the
//   student sees it (think blocks hidden): as a whole number/word in the text ("12" leaks in
//   "so 12 apples", not in "112"), or as the value of a \boxed{} the tutor wrote.
#pragma once

#include "classroom/conversation.hpp"

#include <string_view>
#include <vector>

namespace pedagogy::classroom {

// Whether `rule` has a rule-based verdict.
bool has_rule_judge(std::string_view rule);

verdict rule_verdict(std::string_view rule, const conversation& dialog, std::string_view answer);

// The answer-leak test on its own: the 1-based tutor turn of `messages` that states `answer`
// (as does_not_leak_answer sees it), or 0 when none does. Pedagogical RL's leak guard uses it
// on ped_teacher dialogs.
int leaking_turn(const std::vector<dialog_message>& messages, std::string_view answer);

} // namespace pedagogy::classroom
