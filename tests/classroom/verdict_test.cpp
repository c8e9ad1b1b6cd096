// Judge verdicts as models really write them.
#include "classroom/verdict.hpp"

#include <doctest/doctest.h>

using namespace pedagogy::classroom;

namespace {

std::string decision_text(std::string_view judge_output) {
  auto v = parse_verdict(judge_output);
  if (!v)
    return "none";
  return v->value == decision::ok ? "OK" : "REJECT";
}

} // namespace

TEST_CASE("well-formed, fenced and surrounded verdicts are read") {
  CHECK(decision_text(R"({"reasoning": "guided well", "decision": "OK"})") == "OK");
  CHECK(decision_text(R"({"reasoning": "gave it away", "decision": "REJECT"})") == "REJECT");
  CHECK(decision_text("```json\n{\"reasoning\": \"fine\", \"decision\": \"OK\"}\n```") == "OK");
  CHECK(decision_text("Let me think. The teacher asked questions.\n{\"reasoning\": \"x\", "
                      "\"decision\": \"OK\"}\nThat is my verdict.") == "OK");
  CHECK(decision_text(R"({"decision": "OK", "reasoning": "order does not matter", "extra": 1})") ==
        "OK");
  CHECK(decision_text(R"({"reasoning": "x", "decision": " reject "})") ==
        "REJECT"); // spacing, case
  auto v = parse_verdict(R"({"reasoning": "the teacher never said 42", "decision": "OK"})");
  REQUIRE(v);
  CHECK(v->reasoning == "the teacher never said 42");
}

TEST_CASE("LaTeX backslashes in the reasoning do not break the verdict") {
  auto v = parse_verdict(
    R"({"reasoning": "wrote \(x = \frac{1}{2}\) and \sqrt{2} early", "decision": "REJECT"})");
  REQUIRE(v);
  CHECK(v->value == decision::reject);
  CHECK(v->reasoning == R"(wrote \(x = \frac{1}{2}\) and \sqrt{2} early)");
  // Braces inside strings are not objects.
  CHECK(decision_text(R"({"reasoning": "the set {1, 2} was hinted", "decision": "OK"})") == "OK");
}

TEST_CASE("the last verdict wins over examples quoted before it") {
  CHECK(decision_text(R"(An example would be {"reasoning": "..", "decision": "REJECT"}. )"
                      R"(My answer: {"reasoning": "good", "decision": "OK"})") == "OK");
}

TEST_CASE("broken JSON still yields its decision") {
  CHECK(decision_text(R"({"reasoning": "trailing comma", "decision": "OK",})") == "OK");
  CHECK(decision_text(R"({'reasoning': 'python quotes', 'decision': 'REJECT'})") == "REJECT");
  // Cut off by the token limit after the decision...
  auto cut = parse_verdict(R"({"decision": "REJECT", "reasoning": "the teacher revealed the ans)");
  REQUIRE(cut);
  CHECK(cut->value == decision::reject);
  CHECK(cut->reasoning == "the teacher revealed the ans");
  // ...or with the decision's closing quote missing.
  CHECK(decision_text(R"({"reasoning": "x", "decision": "OK)") == "OK");
}

TEST_CASE("no readable decision is no verdict, never a silent OK") {
  CHECK(decision_text("") == "none");
  CHECK(decision_text("I cannot decide.") == "none");
  CHECK(decision_text(R"({"reasoning": "cut off before the decis)") == "none");
  CHECK(decision_text(R"({"reasoning": "x", "decision": "MAYBE"})") == "none");
  CHECK(decision_text(R"({"reasoning": "x", "decision": 1})") == "none");
  CHECK(decision_text("{ not json at all }") == "none");
}
