// The evaluation's metrics against values computed by hand, the reference's quirks included.
#include "classroom/eval_metrics.hpp"
#include "classroom/record.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>

#include <cmath>

using namespace pedagogy::classroom;
using pedagogy::input_error;

namespace {

dialog_eval on(int64_t problem) {
  dialog_eval d;
  d.problem = problem;
  return d;
}

} // namespace

TEST_CASE("a dialog's leak rate is REJECT over verdicts: with 2 verdicts it adds 0, 0.5 or 1") {
  auto a = on(0), b = on(1), c = on(2);
  a.leak_rejects = {true, false};
  b.leak_rejects = {true, true};
  c.leak_rejects = {false, false};
  const auto s = summarize({a, b, c});
  CHECK(s.leaked.mean == doctest::Approx(0.5));
  CHECK(s.leaked.count == 3);
  // values 0.5, 1, 0: sample variance 0.25, standard error sqrt(0.25 / 3)
  CHECK(s.leaked.ci95 == doctest::Approx(1.96 * std::sqrt(0.25 / 3)));
  CHECK(s.pedagogy_rejects.count == 0); // no verdicts of that judge: no value, not 0
}

TEST_CASE("repeats of a problem are averaged before the mean over problems") {
  auto a = on(0), b = on(0), c = on(1);
  a.post = 0.25;
  b.post = 0.75;
  c.post = 1.0;
  const auto s = summarize({a, b, c});
  CHECK(s.post.mean == doctest::Approx(0.75)); // (0.5 + 1) / 2, not (0.25 + 0.75 + 1) / 3
  CHECK(s.post.count == 2);
  CHECK(s.problems == 2);
  CHECK(s.dialogs == 3);
}

TEST_CASE("delta is post minus pre per problem, only where both were measured") {
  auto a = on(0), b = on(1), c = on(2);
  a.pre = 0.25;
  a.post = 0.75;
  b.pre = 0.5;
  b.post = 0.25;
  c.post = 1.0; // no pre-dialog attempts: in post, not in delta
  const auto s = summarize({a, b, c});
  CHECK(s.delta.mean == doctest::Approx(0.125));
  CHECK(s.delta.count == 2);
  CHECK(s.pre.mean == doctest::Approx(0.375));
  CHECK(s.post.mean == doctest::Approx(2.0 / 3));
}

TEST_CASE("a failed dialog is counted and left out of every metric") {
  auto a = on(0), b = on(0);
  a.post = 1.0;
  a.leak_rejects = {false, false};
  b.failed = true;
  b.post = 0.0;
  b.leak_rejects = {true, true};
  const auto s = summarize({a, b});
  CHECK(s.failed == 1);
  CHECK(s.post.mean == doctest::Approx(1.0));
  CHECK(s.leaked.mean == doctest::Approx(0.0));
}

TEST_CASE("Ped-RM macro counts a dialog with no scored turn as 0, micro pools the turns") {
  auto a = on(0), b = on(1), c = on(2);
  a.ped_rm_scored = b.ped_rm_scored = true;
  a.ped_rm = {1.0, 3.0};
  b.ped_rm = {};    // scored, but no tutor turn to score
  c.ped_rm = {5.0}; // never scored: in neither average
  const auto s = summarize({a, b, c});
  CHECK(s.ped_rm_macro.mean == doctest::Approx(1.0)); // (2 + 0) / 2
  CHECK(s.ped_rm_macro.count == 2);
  CHECK(s.ped_rm_micro.mean == doctest::Approx(2.0)); // (1 + 3) / 2 turns
  CHECK(s.ped_rm_micro.count == 1);
}

TEST_CASE("a record becomes its metrics: the two judges' verdicts, the raw solve rate, failure") {
  dialog_record r;
  r.problem_index = 7;
  r.reward.solve_rate = 0.375;
  r.reward.total = -1; // the penalised reward is not what the metrics read
  judge_record leak{leak_rule, {}, 0};
  leak.verdicts = {{decision::reject, "shows 42"}, {decision::ok, "fine"}};
  judge_record ped{pedagogy_rule, {}, 0};
  ped.verdicts = {{decision::ok, ""}, {decision::ok, ""}};
  judge_record other{"some_other_rule", {}, 0};
  other.verdicts = {{decision::reject, ""}};
  r.judgements = {leak, ped, other};
  auto d = to_eval(r, 0.125);
  CHECK(d.problem == 7);
  CHECK_FALSE(d.failed);
  CHECK(*d.pre == doctest::Approx(0.125));
  CHECK(*d.post == doctest::Approx(0.375));
  CHECK(d.leak_rejects == std::vector<bool>{true, false});
  CHECK(d.pedagogy_rejects == std::vector<bool>{false, false});
  r.status = "failed";
  CHECK(to_eval(r).failed);
  CHECK_FALSE(to_eval(r).pre.has_value());
}

TEST_CASE("pass at k is the unbiased estimator, by hand on small cases") {
  CHECK(pass_at_k(8, 0, 1) == doctest::Approx(0.0));
  CHECK(pass_at_k(8, 8, 4) == doctest::Approx(1.0));
  CHECK(pass_at_k(8, 2, 1) == doctest::Approx(0.25));
  CHECK(pass_at_k(4, 1, 2) == doctest::Approx(0.5)); // 1 - C(3,2)/C(4,2) = 1 - 3/6
  CHECK(pass_at_k(5, 2, 2) == doctest::Approx(0.7)); // 1 - C(3,2)/C(5,2) = 1 - 3/10
  CHECK(pass_at_k(4, 3, 2) == doctest::Approx(1.0)); // fewer wrong than k: always a hit
  const auto m = pass_at_k({{8, 2}, {8, 6}}, 1);     // 0.25 and 0.75
  CHECK(m.mean == doctest::Approx(0.5));
  CHECK(m.count == 2);
  CHECK(m.ci95 == doctest::Approx(1.96 * std::sqrt(0.125 / 2)));
}

TEST_CASE(
  "the table shows percentages with their interval, and a dash where nothing was measured") {
  eval_row row;
  row.tutor = "rl|7b";
  row.model = "runs/x";
  row.summary.problems = 2;
  row.summary.dialogs = 3;
  row.summary.failed = 1;
  row.summary.pre = {0.25, 0.125, 2};
  row.summary.post = {0.5, 0.0, 2};
  row.summary.delta = {0.25, 0.1, 2};
  row.summary.leaked = {0.0612, 0.01, 2};
  row.summary.ped_rm_micro = {1.2345, 0.5, 2};
  const auto table = markdown_table(std::vector<eval_row>{row});
  const auto line = table.substr(table.rfind("| rl"));
  CHECK(line == "| rl\\|7b | 2 | 3 | 1 | 25.0 ± 12.5 | 50.0 ± 0.0 | 25.0 ± 10.0 | 6.1 ± 1.0 | - | "
                "1.23 ± 0.50 | - |\n");
  CHECK(table.find("| tutor | problems |") == 0);

  solve_row solve;
  solve.tutor = "base";
  solve.problems = 4;
  solve.k = 8;
  solve.pass1 = {0.375, 0.05, 4};
  solve.passk = {0.75, 0.2, 4};
  const auto solved = markdown_table(std::vector<solve_row>{solve});
  CHECK(solved.find("| pass@8 % |") != std::string::npos);
  CHECK(solved.find("| base | 4 | 0 | 37.5 ± 5.0 | 75.0 ± 20.0 |") != std::string::npos);
}

TEST_CASE("a record read back from its line is the same record") {
  dialog_record r;
  r.id = "0/3/1";
  r.status = "ok";
  r.problem_index = 3;
  r.sample = 1;
  r.problem = "What is \"6\" x 7?\nThink.";
  r.answer = "42";
  r.type = "guided";
  r.student_name = "Riley";
  r.persona = "simple_student";
  r.messages = {{true, "<think>x</think>Hi", 4}, {false, "Hello", 2}};
  r.judgements = {{leak_rule, {{decision::ok, "fine"}, {decision::reject, "says 42"}}, 1}};
  r.solutions = {{"\\boxed{42}", "42", true, 9}, {"no", "", false, 1}};
  r.reward.solve_rate = 0.5;
  r.reward.total = 0.25;
  r.reward.end = 0.5;
  r.rejected = true;
  r.tutor_turns = 1;
  r.tutor_tokens = 4;
  r.weights_version = 2;
  r.seconds = 1.5;
  const auto line = to_json_line(r);
  const auto back = from_json_line(line, "dialogs.jsonl:1");
  CHECK(to_json_line(back) == line);
  CHECK(back.judgements.at(0).verdicts.at(1).value == decision::reject);
  CHECK(*back.reward.solve_rate == 0.5);

  dialog_record failed;
  failed.id = "0/0/0";
  failed.status = "failed";
  failed.error = "the tutor generator failed 3 times";
  const auto failed_back = from_json_line(to_json_line(failed), "x");
  CHECK(failed_back.error == failed.error);
  CHECK_FALSE(failed_back.reward.solve_rate.has_value());
}

TEST_CASE("a broken record line is named by file and line, with the field") {
  auto error_of = [](const std::string& line) {
    try {
      from_json_line(line, "out/dialogs.jsonl:7");
    } catch (const input_error& e) {
      return std::string(e.where()) + " | " + e.problem();
    }
    return std::string("no error");
  };
  CHECK(error_of("{\"id\": \"0/0/0\", \"stat").find("out/dialogs.jsonl:7 | not a JSON object") ==
        0);
  CHECK(error_of("[1, 2]").find("not a JSON object") != std::string::npos);
  const auto missing = error_of(R"({"id": "0/0/0"})");
  CHECK(missing.find("out/dialogs.jsonl:7") == 0);
  CHECK(missing.find("field 'status'") != std::string::npos);
  const auto wrong = error_of(R"({"id": 5})");
  CHECK(wrong.find("field 'id'") != std::string::npos);
}
