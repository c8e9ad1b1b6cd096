// The rule-based answer-leak judge: what counts as stating the answer, and what does not.
#include "classroom/rule_judge.hpp"

#include <doctest/doctest.h>

using namespace pedagogy::classroom;

namespace {

decision judge(const std::vector<std::string>& tutor_turns, const std::string& answer,
               const std::string& student = "I am not sure.") {
  conversation c(dialog_type::guided, {});
  c.start();
  for (const auto& t : tutor_turns) {
    if (c.current() == phase::student_turn)
      c.on_student_reply(student, 1);
    c.on_tutor_reply(t, 1);
  }
  return rule_verdict("does_not_leak_answer", c, answer).value;
}

} // namespace

TEST_CASE("stating the answer as a whole number in a visible tutor turn is a leak") {
  CHECK(judge({"The answer is 12."}, "12") == decision::reject);
  CHECK(judge({"Try again.", "So you get 12 apples."}, "12") == decision::reject);
  CHECK(judge({"x = -3, check it!"}, "-3") == decision::reject);
  CHECK(judge({"It is 5/6 of the pizza."}, "5/6") == decision::reject);
  CHECK(judge({"Nice: \\boxed{0.5}"}, "1/2") == decision::reject); // a boxed equal value
}

TEST_CASE("numbers that merely contain the answer, and hidden thinking, are not leaks") {
  CHECK(judge({"What is 112 minus 100?"}, "12") == decision::ok);
  CHECK(judge({"Think about 2.5 first."}, "2") == decision::ok);
  CHECK(judge({"Is 12.5 right?"}, "12") == decision::ok);
  CHECK(judge({"Look at 5/7 again."}, "5") == decision::ok);
  CHECK(judge({"<think>The answer is 12.</think>What do you get?"}, "12") == decision::ok);
  CHECK(judge({"Multiply first."}, "12") == decision::ok);
  CHECK(judge({"caf\u00e912 is odd"}, "12") == decision::ok); // glued to a UTF-8 letter
}

TEST_CASE("only the tutor's turns count: the student may say the answer") {
  CHECK(judge({"What do you get?", "Explain how you got it."}, "12", "I get 12!") == decision::ok);
}

TEST_CASE("only does_not_leak_answer has a rule") {
  CHECK(has_rule_judge("does_not_leak_answer"));
  CHECK_FALSE(has_rule_judge("follows_pedagogical_values"));
}

TEST_CASE("a small answer used as an exponent, label, operand or part of a number is not stated") {
  for (const std::string turn : {
         "What is x^2 when x is 3?",
         "Write x^{2} as x times x.",
         "Now do step 2.",
         "Look at Step 2: what do you get?",
         "So 2x equals 6.",
         "Is it 12?",
         "Try 2.5 first.",
         "How about 2,000?",
         "Take a_2 next.",
         "Simplify \\frac{1}{2} first.",
         "What is \\sqrt{2} roughly?",
         "Solve x - 2 = 0 first.",
         "What is 2 + 3?",
         "Multiply 3 \\times 2 first.",
         "Is 4/2 simpler?",
       }) {
    CAPTURE(turn);
    CHECK(judge({turn}, "2") == decision::ok);
  }
}

TEST_CASE("an answer standing as a value in a tutor turn is stated") {
  for (const std::string turn : {
         "The answer is 2.",
         "So x = 2, well done.",
         "$x=2$ is right.",
         "Yes, it is 2",
         "You get 2 apples.",
         "First \\boxed{2}, then \\boxed{3}.",
       }) {
    CAPTURE(turn);
    CHECK(judge({turn}, "2") == decision::reject);
  }
  CHECK(judge({"So 2 + 3 = 5."}, "5") == decision::reject);
  CHECK(judge({"Then x = -3."}, "-3") == decision::reject);
  CHECK(judge({"Then x = -3."}, "3") == decision::ok); // -3 is not 3
}
