// Dialog rewards against hand-computed values.
#include "classroom/rewards.hpp"

#include <doctest/doctest.h>

using namespace pedagogy::classroom;

namespace {

dialog_limits limits(bool soft) {
  dialog_limits l;
  l.judge_rules = {"does_not_leak_answer"};
  l.judge_attempts = 1;
  l.ignore_rejected_judge = soft;
  return l;
}

// A guided dialog: the tutor's turns as given (each followed by a student reply but the last).
conversation dialog(std::vector<std::pair<std::string, int64_t>> tutor_turns, bool soft,
                    bool reject) {
  conversation c(dialog_type::guided, limits(soft));
  c.start();
  for (size_t i = 0; i < tutor_turns.size(); ++i) {
    c.on_tutor_reply(tutor_turns[i].first, tutor_turns[i].second);
    if (c.current() == phase::student_turn)
      c.on_student_reply("ok", 2);
  }
  if (c.current() == phase::tutor_turn)
    c.on_tutor_reply("<end_of_conversation>", 3);
  c.on_verdicts({verdict{reject ? decision::reject : decision::ok, ""}});
  if (c.current() == phase::solving) {
    c.on_solutions(std::vector<std::string>(8, "\\boxed{?}"));
    c.on_grades({true, true, true, false, false, false, false, false});
  }
  return c;
}

} // namespace

TEST_CASE("an accepted dialog earns its solve rate, the end-marker bonus and nothing else") {
  auto c = dialog({{"Think about it.", 5}, {"Good. <end_of_conversation>", 4}}, false, false);
  auto r = dialog_reward(c, reward_weights{});
  REQUIRE(r.solve_rate.has_value());
  CHECK(*r.solve_rate == doctest::Approx(3.0 / 8));
  CHECK(r.end == doctest::Approx(0.375));
  CHECK(r.end_marker == doctest::Approx(0.1));
  CHECK(r.thinking == 0.0);
  CHECK(r.length == 0.0);
  CHECK(r.total == doctest::Approx(0.475));
}

TEST_CASE("soft mode subtracts lambda from the solve rate, hard mode gives -lambda alone") {
  reward_weights w;
  w.rejection_penalty = 1.0;
  auto soft = dialog_reward(dialog({{"x = 5. <end_of_conversation>", 4}}, true, true), w);
  CHECK(soft.end == doctest::Approx(0.375 - 1.0));
  CHECK(soft.end_marker == doctest::Approx(0.1));
  auto hard = dialog_reward(dialog({{"x = 5. <end_of_conversation>", 4}}, false, true), w);
  CHECK_FALSE(hard.solve_rate.has_value());
  CHECK(hard.end == doctest::Approx(-1.0));
  CHECK(hard.end_marker == 0.0); // no solutions: no format rewards
  CHECK(hard.total == doctest::Approx(-1.0));
}

TEST_CASE("thinking: a penalty per unbalanced turn, a bonus for the share of turns that think") {
  auto c = dialog({{"<think>plan</think>Try 2.", 6},
                   {"<think>oops, unclosed", 5},
                   {"plain", 1},
                   {"<end_of_conversation>", 1}},
                  false, false);
  auto r = dialog_reward(c, reward_weights{});
  // 4 tutor turns: 1 balanced with thinking, 1 unbalanced.
  CHECK(r.thinking == doctest::Approx(-0.5 + 0.5 * 1.0 / 4.0));
}

TEST_CASE("a tutor turn at the token limit costs the length penalty, even when rejected") {
  reward_weights w;
  w.max_tokens_per_turn = 100;
  auto cut =
    dialog_reward(dialog({{"very long ...", 99}, {"<end_of_conversation>", 2}}, false, false), w);
  CHECK(cut.length == doctest::Approx(-0.5));
  auto fine =
    dialog_reward(dialog({{"long but fine", 98}, {"<end_of_conversation>", 2}}, false, false), w);
  CHECK(fine.length == 0.0);
  auto rejected =
    dialog_reward(dialog({{"long leak", 99}, {"<end_of_conversation>", 2}}, false, true), w);
  CHECK(rejected.length == doctest::Approx(-0.5));
}

TEST_CASE("a dialog that ran out of turns gets no end-marker bonus") {
  dialog_limits l = limits(false);
  l.max_tutor_turns = 2;
  conversation c(dialog_type::guided, l);
  c.start();
  c.on_tutor_reply("one", 1);
  c.on_student_reply("bye <end_of_conversation>", 3); // the student's marker does not count
  c.on_tutor_reply("two", 1);
  c.on_verdicts({verdict{decision::ok, ""}});
  c.on_solutions({"a"});
  c.on_grades({true});
  auto r = dialog_reward(c, reward_weights{});
  CHECK(r.end_marker == 0.0);
  CHECK(r.total == doctest::Approx(1.0));
}
