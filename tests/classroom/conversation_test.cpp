// The dialog state machine: every transition, the limits, judging in both modes, hidden thinking
// and the stable scenario.
#include "classroom/conversation.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace pedagogy::classroom;

namespace {

dialog_limits two_rules(bool soft = false) {
  dialog_limits l;
  l.judge_rules = {"does_not_leak_answer", "follows_pedagogical_values"};
  l.judge_attempts = 2;
  l.judge_parse_rounds = 3;
  l.ignore_rejected_judge = soft;
  return l;
}

verdict ok() {
  return {decision::ok, "fine"};
}
verdict reject() {
  return {decision::reject, "leaked"};
}

// Plays a dialog in which nobody ends early; returns the phase it reaches.
phase talk_until_judging(conversation& c) {
  phase p = c.start();
  for (int guard = 0; (p == phase::tutor_turn || p == phase::student_turn) && guard < 100; ++guard)
    p = p == phase::tutor_turn ? c.on_tutor_reply("A hint.", 10) : c.on_student_reply("Hmm.", 5);
  return p;
}

} // namespace

TEST_CASE("a guided dialog alternates from the tutor and ends after max_tutor_turns") {
  conversation c(dialog_type::guided, two_rules());
  CHECK(talk_until_judging(c) == phase::judging);
  CHECK(c.tutor_turns() == 8);
  CHECK(c.messages().size() == 15); // 8 tutor + 7 student, as the reference's 15 messages
  CHECK(c.messages().front().from_tutor);
  CHECK(c.messages().back().from_tutor);
}

TEST_CASE("an attempted dialog starts with the student's attempt and gets 8 + 8 messages") {
  conversation c(dialog_type::attempted, two_rules());
  CHECK(c.start() == phase::student_turn);
  CHECK(c.on_student_reply("This is my attempt: x = 3", 9) == phase::tutor_turn);
  phase p = phase::tutor_turn;
  while (p == phase::tutor_turn || p == phase::student_turn)
    p = p == phase::tutor_turn ? c.on_tutor_reply("Why?", 3) : c.on_student_reply("Because.", 2);
  CHECK(p == phase::judging);
  CHECK(c.messages().size() == 16);
  CHECK_FALSE(c.messages().front().from_tutor);
}

TEST_CASE(
  "the tutor's end marker ends the dialog, inside a think block too, the student's does not") {
  conversation plain(dialog_type::guided, two_rules());
  plain.start();
  CHECK(plain.on_tutor_reply("Well done! <end_of_conversation>", 6) == phase::judging);
  CHECK(plain.ended_by_tutor());

  conversation thinking(dialog_type::guided, two_rules());
  thinking.start();
  CHECK(thinking.on_tutor_reply("<think>done <end_of_conversation></think>Good.", 9) ==
        phase::judging);

  conversation student(dialog_type::guided, two_rules());
  student.start();
  student.on_tutor_reply("Try.", 1);
  CHECK(student.on_student_reply("bye <end_of_conversation>", 3) == phase::tutor_turn);
}

TEST_CASE("the token budget ends the dialog after whichever message crosses it") {
  dialog_limits l = two_rules();
  l.max_tokens_in_conversation = 100;
  conversation c(dialog_type::guided, l);
  c.start();
  CHECK(c.on_tutor_reply("short", 40) == phase::student_turn);
  CHECK(c.on_student_reply("long answer", 61) == phase::judging); // 101 > 100
  CHECK_FALSE(c.messages().back().from_tutor);
  CHECK(c.content_tokens() == 101);
}

TEST_CASE("without judges a finished dialog goes straight to solving") {
  dialog_limits none = two_rules();
  none.judge_attempts = 0;
  conversation c(dialog_type::guided, none);
  c.start();
  CHECK(c.on_tutor_reply("<end_of_conversation>", 2) == phase::solving);
  dialog_limits no_rules = two_rules();
  no_rules.judge_rules.clear();
  conversation d(dialog_type::guided, no_rules);
  d.start();
  CHECK(d.on_tutor_reply("<end_of_conversation>", 2) == phase::solving);
}

TEST_CASE("hard mode: the first rejecting rule ends the dialog without solutions") {
  conversation c(dialog_type::guided, two_rules());
  c.start();
  c.on_tutor_reply("The answer is 42. <end_of_conversation>", 9);
  CHECK(c.judge_rule() == "does_not_leak_answer"); // the configured order
  CHECK(c.verdicts_wanted() == 2);
  CHECK(c.on_verdicts({ok(), reject()}) == phase::done);
  CHECK(c.rejected());
  CHECK(c.judgements().size() == 1); // the second rule never ran
  CHECK(c.solutions().empty());
}

TEST_CASE("soft mode: every rule runs, a rejection is remembered, solutions follow") {
  conversation c(dialog_type::guided, two_rules(/*soft=*/true));
  c.start();
  c.on_tutor_reply("The answer is 42. <end_of_conversation>", 9);
  CHECK(c.on_verdicts({reject(), reject()}) == phase::judging);
  CHECK(c.judge_rule() == "follows_pedagogical_values");
  CHECK(c.on_verdicts({ok(), ok()}) == phase::solving);
  CHECK(c.rejected());
  CHECK(c.judgements().size() == 2);
  CHECK(c.on_solutions({"\\boxed{42}", "\\boxed{41}", "no idea"}) == phase::grading);
  CHECK(c.on_grades({true, false, false}) == phase::done);
  CHECK(c.grades().size() == 3);
}

TEST_CASE("unparsed verdicts are asked again, then follow the policy") {
  for (bool rejects : {true, false}) {
    CAPTURE(rejects);
    dialog_limits l = two_rules();
    l.unparsed_rejects = rejects;
    conversation c(dialog_type::guided, l);
    c.start();
    c.on_tutor_reply("<end_of_conversation>", 1);
    CHECK(c.on_verdicts({ok(), std::nullopt}) == phase::judging); // round 1: one parsed
    CHECK(c.verdicts_wanted() == 1);
    CHECK(c.on_verdicts({std::nullopt}) == phase::judging); // round 2: none
    const phase after = c.on_verdicts({std::nullopt});      // round 3 of 3: give up
    CHECK(c.judgements().at(0).unparsed == 1);
    CHECK(c.judgements().at(0).verdicts.size() == 2);
    if (rejects) {
      CHECK(after == phase::done); // hard mode, and the unparsed verdict rejects
    } else {
      CHECK(after == phase::judging); // counted as OK: on to the next rule
      CHECK(c.judge_rule() == "follows_pedagogical_values");
    }
  }
}

TEST_CASE("students and judges do not see the tutor's thinking or end markers") {
  CHECK(visible_text("<think>answer is 5</think>What do you get?") == "What do you get?");
  CHECK(visible_text("A<think>x</think>B<think>y</think>C") == "ABC");
  CHECK(visible_text("Try again. <think>the answer is 5, never say") == "Try again. "); // unclosed
  CHECK(visible_text("Bye! <end_of_conversation>") == "Bye! ");
  CHECK(visible_text("no thinking here") == "no thinking here");
}

TEST_CASE("a closing think tag outside any think block stays visible, as in the reference") {
  CHECK(visible_text("Use </think> to close it.") == "Use </think> to close it.");
  CHECK(visible_text("<think>a</think>b</think>") == "b</think>");
  CHECK(visible_text("<think><think>a</think>b</think>c") == "b</think>c");
}

TEST_CASE("a problem's scenario is stable and problems spread over every choice") {
  auto a = choose_scenario("What is 2+2?", 0, 9, 1);
  auto b = choose_scenario("What is 2+2?", 0, 9, 1);
  CHECK(a.type == b.type);
  CHECK(a.name == b.name);
  int guided = 0;
  std::set<size_t> names;
  std::set<bool> differs_by_seed;
  for (int i = 0; i < 1000; ++i) {
    const std::string problem = "Problem number " + std::to_string(i);
    auto s = choose_scenario(problem, 0, 9, 3);
    guided += s.type == dialog_type::guided;
    names.insert(s.name);
    CHECK(s.persona < 3);
    differs_by_seed.insert(choose_scenario(problem, 1, 9, 3).type == s.type);
  }
  CHECK(guided > 400);
  CHECK(guided < 600);
  CHECK(names.size() == 9);
  CHECK(differs_by_seed.size() == 2); // the seed changes some assignments
}
