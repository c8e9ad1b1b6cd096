// Answer checking: extraction of the last \boxed{}, and a table of equal and unequal answers in
// math mode (with normalisation) and exact mode (the reference's string match).
#include "classroom/answer_check.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

using namespace pedagogy::classroom;

namespace {

struct case_row {
  const char* reference;
  const char* candidate;
  bool same;
};

// Math mode: the reference answer, what the student boxed, and whether they agree.
const std::vector<case_row> math_cases = {
  // integers, signs, leading zeros, thousands separators
  {"5", "5", true},
  {"5", "5.0", true},
  {"5", "05", true},
  {"5", "+5", true},
  {"-5", "-5", true},
  {"-5", "5", false},
  {"5", "6", false},
  {"0", "-0", true},
  {"1000", "1,000", true},
  {"1000000", "1,000,000", true},
  {"1,000", "1000", true},
  {"12", "12.", true},
  {"-3", "\u22123", true},
  {"-3", "- 3", true},
  {"3", "-3", false},
  {"1000", "100", false},
  {"123456789", "123456789", true},
  {"123456789", "123456788", false},
  // decimals
  {"0.5", ".5", true},
  {"0.25", "0.250", true},
  {"3.14", "3.14159", false},
  {"0.333", "1/3", false},
  {"2.5", "2.50", true},
  {"-0.75", "-.75", true},
  {"0.1", "0.01", false},
  {"1.5", "3/2", true},
  // fractions, mixed numbers
  {"0.5", "1/2", true},
  {"0.5", "\\frac{1}{2}", true},
  {"\\frac{3}{4}", "0.75", true},
  {"\\frac{3}{4}", "3/4", true},
  {"\\frac{3}{4}", "\\dfrac{3}{4}", true},
  {"\\frac{3}{4}", "\\tfrac34", true},
  {"\\frac{3}{4}", "\\frac34", true},
  {"\\frac{6}{8}", "\\frac{3}{4}", true},
  {"-\\frac{1}{2}", "\\frac{-1}{2}", true},
  {"-\\frac{1}{2}", "-0.5", true},
  {"\\frac{1}{2}", "\\frac{1}{3}", false},
  {"\\frac{3}{4}", "4/3", false},
  {"1\\frac{1}{2}", "1.5", true},
  {"3\\frac{1}{4}", "13/4", true},
  {"\\frac{1}{3}", "0.3333333333333", true},
  {"\\frac{1}{3}", "0.33", false},
  {"\\frac{10}{4}", "2.5", true},
  {"\\frac{22}{7}", "\\pi", false},
  {"7/2", "\\frac{7}{2}", true},
  {"\\frac{-3}{-4}", "0.75", true},
  {"\\frac{1}{0}", "1", false},
  // percentages
  {"50", "50\\%", true},
  {"50\\%", "50", true},
  {"50\\%", "0.5", true},
  {"0.5", "50%", true},
  {"25%", "20%", false},
  {"12.5\\%", "0.125", true},
  {"100\\%", "1", true},
  {"30", "0.3", false},
  // scientific notation
  {"1500", "1.5e3", true},
  {"1500", "1.5\\times10^3", true},
  {"1500", "1.5 \\times 10^{3}", true},
  {"0.0001", "1e-4", true},
  {"2e5", "200000", true},
  {"1500", "1.5e4", false},
  {"3\\cdot10^{2}", "300", true},
  {"6.02\\times10^{23}", "6.02e23", true},
  // text, units, degrees, money, assignments
  {"5", "5 \\text{ cm}", true},
  {"5", "5\\text{cm}", true},
  {"5", "5 cm", true},
  {"12", "12 apples", true},
  {"90", "90^\\circ", true},
  {"90", "90^{\\circ}", true},
  {"90", "90\u00B0", true},
  {"45", "\\text{45}", true},
  {"5", "\\$5", true},
  {"5", "5 dollars", true},
  {"7", "x = 7", true},
  {"7", "x=7", true},
  {"7", "y = 8", false},
  {"3", "3 \\text{ hours}", true},
  {"60", "60 \\mbox{ km/h}", false},
  {"20", "\\textbf{20}", true},
  {"8", "8 \\mathrm{m}^2", false},
  {"4", "4 feet", true},
  {"4", "5 feet", false},
  {"180", "180 degrees", true},
  // LaTeX spacing and wrappers
  {"10", "\\,10", true},
  {"10", "10\\!", true},
  {"10", "$10$", true},
  {"10", "\\(10\\)", true},
  {"10", "\\displaystyle 10", true},
  {"\\frac{1}{2}", "\\left(\\frac{1}{2}\\right)", true},
  {"10", "(10)", true},
  {"10", "((10))", true},
  {"x^2", "x^{2}", true},
  {"a_1", "a_{1}", true},
  {"10", "\\; 10 \\;", true},
  {"10", "1 0", true},
  // roots and pi
  {"2\\sqrt{3}", "2\\sqrt3", true},
  {"\\sqrt{2}", "1.41421356237", true},
  {"\\sqrt{2}", "1.414", false},
  {"\\pi", "3.14", false},
  {"2\\pi", "2\\pi", true},
  {"\\frac{\\pi}{2}", "\\frac{\\pi}{2}", true},
  {"\\sqrt{16}", "4", true},
  {"3\\sqrt{2}", "\\sqrt{18}", true},
  {"2\\pi", "\\pi", false},
  {"\\frac{\\pi}{4}", "0.785398163397", true},
  // tuples, intervals, sets, lists
  {"(1,2)", "(1, 2)", true},
  {"(1,2)", "(2,1)", false},
  {"(1,2)", "[1,2]", false},
  {"[1,2)", "[1, 2)", true},
  {"[1,2)", "[1,2]", false},
  {"(0,\\infty)", "(0, \\infty)", true},
  {"\\{1,2,3\\}", "\\{3,2,1\\}", true},
  {"\\{1,2\\}", "\\{1,2,3\\}", false},
  {"(\\frac12, 3)", "(0.5,3)", true},
  {"1, 2", "2, 1", true},
  {"1,2", "1,3", false},
  {"(-1, 4)", "(-1,4)", true},
  {"(3, -2)", "(3,2)", false},
  {"\\{-1, 1\\}", "\\{1, -1\\}", true},
  {"[0, 1]", "[0,1]", true},
  {"(1,2,3)", "(1,2)", false},
  {"x=1, y=2", "x=1, y=2", true},
  {"\\{5\\}", "\\{5\\}", true},
  {"2, 3", "3, 2", true},
  {"(2, 3)", "(3, 2)", false},
  // symbolic text (no algebra)
  {"2x+1", "2x + 1", true},
  {"2x+1", "1+2x", false},
  {"ABC", "abc", true},
  {"\\text{yes}", "Yes", true},
  {"A", "B", false},
  {"\\text{(C)}", "C", true},
  {"x^2-1", "x^2 - 1", true},
  {"\\infty", "\\infty", true},
  {"-\\infty", "\\infty", false},
  {"\\emptyset", "\\emptyset", true},
  {"n+1", "n + 1", true},
  {"n+1", "n-1", false},
  {"Tuesday", "tuesday", true},
  {"Tuesday", "Monday", false},
  {"\\frac{5}{2}", "2\\frac{1}{2}", true},
  {"-2", "\\frac{4}{-2}", true},
  {"0.001", "10^{-3}", true},
  {"1000", "10^3", true},
  {"100", "10^3", false},
};

// Exact mode: the reference's case-insensitive match of the trimmed strings.
const std::vector<case_row> exact_cases = {
  {"5", "5", true},
  {"5", "5.0", false},
  {"Yes", "yes", true},
  {" 5 ", "5", true},
  {"\\frac{1}{2}", "1/2", false},
  {"1000", "1,000", false},
  {"50", "50\\%", false},
  {"x", "X", true},
  {"(1,2)", "(1, 2)", false},
  {"7", "x = 7", false},
};

} // namespace

TEST_CASE("math-mode equivalence: a table of equal and unequal answers") {
  CHECK(math_cases.size() + exact_cases.size() >= 150);
  int wrong = 0;
  for (const auto& c : math_cases) {
    const bool got = same_answer(c.reference, c.candidate, answer_mode::math);
    if (got != c.same) {
      ++wrong;
      MESSAGE("reference '" << std::string(c.reference) << "' vs '" << std::string(c.candidate)
                            << "': expected " << (c.same ? "equal" : "different")
                            << ", normalised '" << normalize_answer(c.reference) << "' vs '"
                            << normalize_answer(c.candidate) << "'");
    }
  }
  CHECK(wrong == 0);
}

TEST_CASE("exact mode is the reference's trimmed, case-insensitive string match") {
  for (const auto& c : exact_cases) {
    CAPTURE(c.reference);
    CAPTURE(c.candidate);
    CHECK(same_answer(c.reference, c.candidate, answer_mode::exact) == c.same);
  }
}

TEST_CASE("the last boxed answer is extracted, nested braces included") {
  CHECK(last_boxed("The answer is \\boxed{42}.") == "42");
  CHECK(last_boxed("so \\boxed{\\frac{1}{2}} is it") == "\\frac{1}{2}");
  CHECK(last_boxed("first \\boxed{1}, then \\boxed{2}") == "2");
  CHECK(last_boxed("\\boxed{\\{1, \\{2\\}\\}}") == "\\{1, \\{2\\}\\}");
  CHECK(last_boxed("\\fbox{7}") == "7");
  CHECK(last_boxed("no box here") == std::nullopt);
  CHECK(last_boxed("\\boxed{3") == std::nullopt); // cut off
  CHECK(last_boxed("\\boxed{}") == std::nullopt);
  // The reference's verifier string contains an empty \boxed{} from its system prompt: a
  // solution without its own box must not match anything.
  auto g = grade_solution("I think it is 5.", "5", answer_mode::math);
  CHECK_FALSE(g.correct);
  CHECK_FALSE(g.extracted.has_value());
  auto h = grade_solution("Step 1 ... so $x = \\boxed{\\dfrac{3}{4}}$", "0.75", answer_mode::math);
  CHECK(h.correct);
  CHECK(h.extracted == "\\dfrac{3}{4}");
  CHECK_FALSE(grade_solution("\\boxed{\\dfrac{3}{4}}", "0.75", answer_mode::exact).correct);
}

namespace {

std::string repeat(std::string_view piece, size_t times) {
  std::string out;
  out.reserve(piece.size() * times);
  for (size_t i = 0; i < times; ++i)
    out += piece;
  return out;
}

} // namespace

TEST_CASE("adversarial answers are graded incorrect in bounded time instead of crashing") {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> boxed = {
    repeat("{", 100000) + "5" + repeat("}", 100000),
    repeat("\\sqrt{", 100000) + "2" + repeat("}", 100000),
    std::string(1000000, '7'),
    repeat("-", 100000) + "5",
    repeat("[", 100000) + "5" + repeat("]", 100000),
    repeat("\\text{", 100000) + "5" + repeat("}", 100000),
  };
  for (const auto& answer : boxed) {
    CAPTURE(answer.size());
    CHECK_FALSE(grade_solution("so \\boxed{" + answer + "}", "5", answer_mode::math).correct);
    CHECK_FALSE(same_answer(answer, "5", answer_mode::math)); // a reference is read the same way
  }
  // Milliseconds in practice; the bound is loose so that a loaded machine does not fail it.
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  CHECK(took.count() < 10.0);
}

TEST_CASE("an answer shaped to make the reader try every reading is read in bounded time") {
  // Each "\\times10^1" suffix reads as a power of ten and each "\\sqrt" as a root: trying the
  // other reading whenever one fails would take about C(120, 60) steps.
  const std::string s = repeat("\\sqrt", 60) + "z" + repeat("\\times10^1", 60);
  const auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(same_answer(s, "5", answer_mode::math));
  CHECK(same_answer(s, s, answer_mode::math)); // unreadable as a number, equal as text
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  CHECK(took.count() < 10.0); // milliseconds in practice; loose for a loaded machine
}

TEST_CASE("an answer past the length or nesting bound is unparsable and says which bound") {
  const auto math = answer_mode::math;
  std::string nested_list = "1";
  for (int i = 0; i < 1000; ++i)
    nested_list = "[" + nested_list + ",1]";
  for (const auto& deep :
       {repeat("\\sqrt{", 500) + "2" + repeat("}", 500), repeat("-", 3000) + "5", nested_list}) {
    REQUIRE(deep.size() <= max_answer_chars);
    const auto g = grade_solution("\\boxed{" + deep + "}", "5", math);
    CHECK_FALSE(g.correct);
    CHECK(g.unparsable == "the answer is nested deeper than 128 levels");
  }
  const std::string long_answer(max_answer_chars + 1, '7');
  CHECK(grade_solution("\\boxed{" + long_answer + "}", "5", math).unparsable ==
        "the answer is longer than 4096 characters");
  CHECK(grade_solution("\\boxed{5}", long_answer, math).unparsable ==
        "the reference is longer than 4096 characters");
  // Exact mode compares strings and needs no bound.
  CHECK(grade_solution("\\boxed{" + long_answer + "}", long_answer, answer_mode::exact).correct);
  // Real answers stay far inside both bounds.
  const auto real = grade_solution("\\boxed{\\left(\\frac{\\sqrt{2}}{2}, -\\frac{1}{2}\\right)}",
                                   "(\\frac{\\sqrt2}{2}, -0.5)", math);
  CHECK(real.correct);
  CHECK(real.unparsable.empty());
  CHECK(grade_solution("\\boxed{" + repeat("(", 100) + "5" + repeat(")", 100) + "}", "5", math)
          .correct);
}

TEST_CASE("numbers past the range or precision of double compare by their digits") {
  const auto math = answer_mode::math;
  const std::string big(400, '9');
  CHECK(same_answer("1e400", "1e400", math));
  CHECK(same_answer("10e399", "1e400", math));
  CHECK(same_answer("1e400", "10^{400}", math));
  CHECK(same_answer("1e400", "1\\times10^{400}", math));
  CHECK_FALSE(same_answer("1e400", "2e400", math));
  CHECK_FALSE(same_answer("1e400", "1e401", math));
  CHECK_FALSE(same_answer("5", "1e400", math));
  CHECK_FALSE(same_answer("5", "10^{400}", math));
  CHECK(same_answer("1e-400", "1e-400", math));
  CHECK_FALSE(same_answer("0", "1e-400", math));
  CHECK(same_answer(big, big, math));
  CHECK(same_answer(big, big + ".000", math));
  CHECK(same_answer("-" + big, "-" + big, math));
  CHECK_FALSE(same_answer(big, big.substr(0, 399) + "8", math));
  CHECK_FALSE(same_answer(big, "-" + big, math));
  // Past 2^53 a double cannot tell neighbouring integers apart, nor can a relative tolerance.
  CHECK_FALSE(same_answer("123456789012", "123456789013", math));
  CHECK_FALSE(same_answer("12345678901234567890", "12345678901234567891", math));
  // An exponent too long for any integer type is read as text: equal only to itself.
  const std::string huge_power = "10^{" + big + "}";
  CHECK(same_answer(huge_power, huge_power, math));
  CHECK_FALSE(same_answer("5", huge_power, math));
  CHECK_FALSE(same_answer("1e" + big, "5", math));
  CHECK(grade_solution("so \\boxed{1e400}", "1e400", math).correct);
  CHECK_FALSE(grade_solution("so \\boxed{1e400}", "5", math).correct);
  CHECK(grade_solution("so \\boxed{" + big + "}", big, math).correct);
}

TEST_CASE("an assignment's variable must agree when both answers name one") {
  const auto math = answer_mode::math;
  CHECK_FALSE(same_answer("y=5", "x=5", math));
  CHECK_FALSE(same_answer("y=2x+1", "z=2x+1", math));
  CHECK_FALSE(grade_solution("so \\boxed{x=5}", "y=5", math).correct);
  CHECK(same_answer("y=2x+1", "y = 2x + 1", math));
  CHECK(same_answer("x=5", "X = 5", math)); // math mode ignores case, as for all text
  // A reference without a variable accepts a solution that names one, and the other way round.
  CHECK(same_answer("2x+1", "y=2x+1", math));
  CHECK(same_answer("5", "x=5", math));
  CHECK(same_answer("x=5", "5", math));
  CHECK(same_answer("x=\\frac{1}{2}", "x=0.5", math));
  CHECK(same_answer("x = 1,000", "1000", math));
  CHECK(same_answer("x=1, y=2", "y=2, x=1", math));
  CHECK_FALSE(same_answer("x=1, y=2", "x=2, y=1", math));
  CHECK_FALSE(same_answer("x=1, y=2", "a=1, b=2", math));
}
