// The generated problem sets: reproducible, distinct, exact answers, disjoint splits, and the
// shipped data/ files are the generator's output (so they can be regenerated, not edited).
#include "classroom/answer_check.hpp"
#include "classroom/problem_generator.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace pedagogy::classroom;
namespace fs = std::filesystem;

namespace {

std::string read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string jsonl(const std::vector<problem>& problems) {
  std::string out;
  for (const auto& p : problems)
    out += to_jsonl(p) + "\n";
  return out;
}

} // namespace

TEST_CASE("a seed gives the same problems, another seed gives others") {
  const auto a = generate_problems(7, 50), b = generate_problems(7, 50),
             c = generate_problems(8, 50);
  CHECK(jsonl(a) == jsonl(b));
  CHECK(jsonl(a) != jsonl(c));
}

TEST_CASE("problems are distinct, varied, and have integer or reduced-fraction answers") {
  const auto problems = generate_problems(1, 400);
  REQUIRE(problems.size() == 400);
  std::set<std::string> texts, openings;
  const std::regex exact(R"(-?\d+(/\d+)?)");
  for (const auto& p : problems) {
    CAPTURE(p.text);
    texts.insert(p.text);
    openings.insert(p.text.substr(0, 12));
    CHECK(std::regex_match(p.answer, exact));
    // A boxed answer is graded correct against itself, in both modes.
    CHECK(grade_solution("so \\boxed{" + p.answer + "}", p.answer, answer_mode::math).correct);
    CHECK(grade_solution("so \\boxed{" + p.answer + "}", p.answer, answer_mode::exact).correct);
  }
  CHECK(texts.size() == problems.size());
  CHECK(openings.size() >= 15);
}

TEST_CASE("a split generated with --exclude shares no problem with the excluded set") {
  const auto train = generate_problems(1, 200);
  const auto test = generate_problems(2, 100, train);
  std::set<std::string> seen;
  for (const auto& p : train)
    seen.insert(p.text);
  for (const auto& p : test)
    CHECK(seen.count(p.text) == 0);
}

TEST_CASE("the bundled data/ files are exactly what make-problems writes") {
  const fs::path data = fs::path(PEDAGOGY_SOURCE_DIR) / "data";
  const auto train = generate_problems(1, 400);
  CHECK(read(data / "problems_train.jsonl") == jsonl(train));
  CHECK(read(data / "problems_test.jsonl") == jsonl(generate_problems(2, 100, train)));
}
