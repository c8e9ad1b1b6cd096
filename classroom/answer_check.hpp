// Grading a student's solution against the reference answer: the last \boxed{...} of the
// solution (nested braces allowed) compared with the reference.
//
// Mode `exact` is the Python reference's check: case-insensitive string equality after trimming
// (classroom.md §3.1), so "\frac{1}{2}" and "0.5" differ. Mode `math` (the default) first
// normalises both sides and compares values: integers, decimals, fractions (\frac, \dfrac, a/b,
// mixed numbers), percentages, scientific notation, thousands separators, signs, simple
// multiples of \sqrt and \pi, with \text{}, units, degrees, dollar signs and LaTeX spacing
// stripped; tuples and intervals element by element (brackets must agree), sets and bare lists
// in any order; anything else as normalised text. No algebra: "2x+1" and "1+2x" differ.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pedagogy::classroom {

enum class answer_mode { math, exact };

// The content of the last \boxed{...} (or \fbox{...}); none when absent, empty or unbalanced.
std::optional<std::string> last_boxed(std::string_view text);

// Whether two final answers agree.
bool same_answer(std::string_view reference, std::string_view candidate, answer_mode mode);

struct grade {
  bool correct = false;
  std::optional<std::string> extracted; // the boxed answer, if any
};

// Extracts the boxed answer of `solution` and compares it with `reference`.
grade grade_solution(std::string_view solution, std::string_view reference, answer_mode mode);

// The math-mode canonical text of an answer (for debugging and tests).
std::string normalize_answer(std::string_view answer);

} // namespace pedagogy::classroom
