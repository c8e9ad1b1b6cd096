// Grading a student's solution against the reference answer: the last \boxed{...} of the
// solution (nested braces allowed) compared with the reference.
//
// Mode `exact` is the Python reference's check: case-insensitive string equality after trimming
// (classroom.md §3.1), so "\frac{1}{2}" and "0.5" differ. Mode `math` (the default) first
// normalises both sides and compares values: integers, decimals, fractions (\frac, \dfrac, a/b,
// mixed numbers), percentages, scientific notation, thousands separators, signs, simple
// multiples of \sqrt and \pi, with \text{}, units, degrees, dollar signs and LaTeX spacing
// stripped; tuples and intervals element by element (brackets must agree), sets and bare lists
// in any order; anything else as normalised text, case ignored. No algebra: "2x+1" and "1+2x"
// differ.
//
// Numbers written as decimals, optionally times a power of ten ("12", "0.50", "1e400",
// "3\times10^{8}"), compare exactly by their digits, so numbers past double's range or
// precision are equal only when their values are; a side that needs arithmetic (fractions,
// roots, pi) compares as a double within a relative 1e-9.
//
// An assignment "v = E" (one variable name, one '=') is the value E labelled v: when both sides
// name a variable the names must agree (case ignored), so "x=5" differs from "y=5"; when only one
// side does, the values alone compare, so "x=5" matches "5" and "y=2x+1" matches "2x+1".
//
// Solutions are sampled text, so the checker must survive anything: it reads at most
// max_answer_chars of an answer and nests at most max_nesting levels deep; past either bound the
// answer is unparsable and graded incorrect.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pedagogy::classroom {

enum class answer_mode { math, exact };

// Longer boxed answers are not read in math mode: real final answers are a few dozen characters,
// and reading stays cheap (a 400-digit number still fits many times over).
inline constexpr size_t max_answer_chars = 4096;

// Deeper nesting (brackets, \frac and \sqrt arguments, signs) is not read in math mode: real
// answers nest a handful of levels, and the recursive reader must stay far from the end of the
// stack on any thread.
inline constexpr int max_nesting = 128;

// The content of the last \boxed{...} (or \fbox{...}); none when absent, empty or unbalanced.
std::optional<std::string> last_boxed(std::string_view text);

// Whether two final answers agree; an unparsable side agrees with nothing.
bool same_answer(std::string_view reference, std::string_view candidate, answer_mode mode);

struct grade {
  bool correct = false;
  std::optional<std::string> extracted; // the boxed answer, if any
  std::string unparsable; // why an answer could not be read (too long, nested too deep), or ""
};

// Extracts the boxed answer of `solution` and compares it with `reference`.
grade grade_solution(std::string_view solution, std::string_view reference, answer_mode mode);

// The math-mode canonical text of an answer (for debugging and tests); an answer longer than
// max_answer_chars comes back unchanged, as math mode does not read it.
std::string normalize_answer(std::string_view answer);

} // namespace pedagogy::classroom
