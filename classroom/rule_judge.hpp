// Judges without a model: deterministic rules standing in for a judge LLM (tests, the tiny
// preset, cheap ablations). Only the answer-leak rule has one:
//
//   does_not_leak_answer: REJECT when a tutor turn as the student sees it (think blocks hidden)
//   states the reference answer, or boxes a value equal to it. A small answer such as 2 turns up
//   in the working of almost any turn, so its text states it only where it stands as a value of
//   its own, not where it is part of something else:
//     - glued to a letter, digit or '_': "12", "2x", "a_2" hold 2 but do not state it;
//     - continuing a number, a '.' or ',' with a digit beyond it: "2.5", "2,000", "1.2";
//     - an operand, the nearest character on either side (spaces skipped) being + - * / ^ _,
//       a symbol for one (× ÷ · −) or \times, \cdot, \div: "x^2", "x - 2", "2 + 3", "4/2";
//     - the argument of a command other than \boxed, \fbox, \text, \textbf, \mathbf,
//       \mathrm, or an exponent's or a later argument's braces: "\sqrt{2}", "x^{2}",
//       "\frac{1}{2}";
//     - a label, after '#' or a word such as step, part, case, question, equation: "step 2".
//   So with answer 2, "the answer is 2", "x = 2", "$x=2$", "\boxed{2}", "it is 2." and "you get
//   2 apples" state it. Both ways can miss: "2 + 3" is not counted even where the tutor means
//   the answer, and "multiply by 2" is counted even where the answer just happens to be 2.
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
