// Pedagogical RL's step logic without actors: which groups are rescued, the ped_teacher's reward
// (product and additive), its GRPO batch in its own view, the corpus (success, R > 0, the leak
// guard, min_g, best_g / top_k / all, the ped_learner's view with its imitation weight), and the
// step's figures.
#include "models/training/training_batch.hpp"
#include "rl/ped_step.hpp"

#include <doctest/doctest.h>

#include <cmath>

using namespace pedagogy;
using namespace pedagogy::actors;

namespace {

// A finished dialog of `problem`: reward `r` (solved when r > 0), the tutor saying `said`.
dialog_result dialog(int64_t problem, double r, const std::string& said = "Try again.") {
  dialog_result d;
  d.record.problem_index = problem;
  d.record.answer = "42";
  d.record.reward.total = r;
  d.record.reward.solve_rate = r > 0 ? 1.0 : 0.0;
  d.record.messages.push_back({true, said, 3});
  // The ped_teacher's view: prompt 1 2 3 (with the block), then sampled 7 8; the ped_learner's:
  // prompt 1 2, then the same 7 8.
  d.tutor = {{1, 2, 3, 7, 8}, {0, 0, 0, 1, 1}, {0, 0, 0, -0.5f, -0.25f}, {-1, -1, -1, 0, 0}};
  d.learner_view = {{1, 2, 7, 8}, {0, 0, 1, 1}, {0, 0, -0.5f, -0.25f}, {-1, -1, 0, 0}};
  d.answer_tokens = {0, 0, 0, 1};
  return d;
}

models::ped_score score(double g, double nll = 1.0) {
  models::ped_score s;
  s.g = g;
  s.nll = nll;
  s.tokens = 2;
  s.mean_gap = 1;
  s.max_gap = 2;
  return s;
}

} // namespace

TEST_CASE("rescue hands over exactly the groups in which no dialog succeeded") {
  std::vector<dialog_result> results = {dialog(5, 0), dialog(5, 0), dialog(6, 0),
                                        dialog(6, 1), dialog(7, 0), dialog(7, 0)};
  results[1].record.status = "failed"; // a failed dialog is no success either
  results[4].record.rejected = true;
  CHECK(failed_problems(results, 2) == std::vector<int64_t>{5, 7});
  results[5].record.reward.total = 0.5; // solved, not rejected
  results[5].record.reward.solve_rate = 0.5;
  CHECK(failed_problems(results, 2) == std::vector<int64_t>{5});
}

TEST_CASE("the ped_teacher's reward: R x G (negative R counts as 0), or R - lambda x NLL") {
  const std::vector<dialog_result> t = {dialog(1, 1.0), dialog(1, -0.5), dialog(1, 0.5)};
  const std::vector<models::ped_score> s = {score(0.5, 2.0), score(0.9, 1.0), score(0.2, 4.0)};
  config::ped_config ped;
  CHECK(ped_rewards(t, s, ped) == std::vector<double>{0.5, 0.0, 0.1});
  ped.reward = config::ped_reward_form::additive;
  ped.additive_lambda = 0.25;
  const auto additive = ped_rewards(t, s, ped);
  CHECK(additive[0] == doctest::Approx(0.5));
  CHECK(additive[1] == doctest::Approx(-0.75));
  CHECK(additive[2] == doctest::Approx(-0.5));
}

TEST_CASE("the ped_teacher's GRPO batch is in its own view, advantages within each problem") {
  std::vector<dialog_result> t = {dialog(1, 1), dialog(1, 0), dialog(2, 0), dialog(2, 0)};
  t[3].record.status = "failed";
  const auto batch = teacher_batch(t, {1.0, 0.0, 0.3, 9.0}, 2, false, 1e-4);
  REQUIRE(batch.sequences.size() == 3);                  // the failed dialog sits out
  CHECK(batch.sequences[0].tokens == t[0].tutor.tokens); // with the privileged prompt
  CHECK(batch.sequences[0].advantage == doctest::Approx(0.5));
  CHECK(batch.sequences[1].advantage == doctest::Approx(-0.5));
  CHECK(batch.sequences[2].advantage == 0.0); // a group of one finished dialog
  CHECK(batch.sequences[0].imitation == 0.0);
}

TEST_CASE("the corpus: successes with R > 0, no leak, G >= min_g, then best_g, top_k or all") {
  std::vector<dialog_result> t = {
    dialog(1, 1.0),                           // G 0.3
    dialog(1, 1.0),                           // G 0.8: best of problem 1
    dialog(1, 0.0),                           // not solved
    dialog(2, 1.0, "The answer is 42, see?"), // leaks the answer
    dialog(2, 1.0),                           // G 0.05
    dialog(3, 1.0),                           // G 0.6
    dialog(3, 1.0),                           // G 0.6 (a tie keeps the first)
  };
  const std::vector<models::ped_score> s = {score(0.3),  score(0.8), score(0.9), score(0.99),
                                            score(0.05), score(0.6), score(0.6)};
  config::ped_config ped;
  ped_stats stats;
  auto corpus = select_corpus(t, s, ped, 0.5, stats);
  REQUIRE(corpus.size() == 3); // best of 1, 2 (the leak dropped), 3
  CHECK(stats.corpus_kept == 3);
  CHECK(stats.corpus_coverage == 1.0);
  CHECK(stats.corpus_g == doctest::Approx((0.8 + 0.05 + 0.6) / 3));
  for (const auto& c : corpus) {
    CHECK(c.tokens == std::vector<int32_t>{1, 2, 7, 8}); // the ped_learner's view
    CHECK(c.imitation == 0.5);
    CHECK(c.answer == std::vector<uint8_t>{0, 0, 0, 1});
    CHECK(c.trained == std::vector<uint8_t>{0, 0, 1, 1});
  }

  ped.min_g = 0.1; // problem 2's only clean success falls below it
  corpus = select_corpus(t, s, ped, 1.0, stats);
  CHECK(corpus.size() == 2);
  CHECK(stats.corpus_coverage == doctest::Approx(2.0 / 3));

  ped.min_g = 0;
  ped.select = config::corpus_select::top_k;
  ped.top_k = 2;
  CHECK(select_corpus(t, s, ped, 1.0, stats).size() == 5); // 2 + 1 + 2
  ped.select = config::corpus_select::all;
  CHECK(select_corpus(t, s, ped, 1.0, stats).size() == 5);

  ped.leak_filter = false; // the leaking dialog is kept now
  CHECK(select_corpus(t, s, ped, 1.0, stats).size() == 6);
  ped.policy = config::ped_policy::solver; // a solver must write the answer: no leak guard
  ped.leak_filter = true;
  CHECK(select_corpus(t, s, ped, 1.0, stats).size() == 6);
}

TEST_CASE("the step's figures: success, G, gaps, leaks and backfill over finished dialogs") {
  std::vector<dialog_result> t = {dialog(1, 1.0), dialog(1, 0.0, "It is 42."), dialog(1, 1.0)};
  t.push_back(dialog(1, 1.0));
  t.back().record.status = "failed";
  std::vector<models::ped_score> s = {score(0.5), score(0.1), score(0.3), score(0.9)};
  s[0].answer_gap = 3;
  s[0].answer_max_gap = 2; // the trajectory's largest gap (2) is on the answer: backfill
  s[2].answer_gap = 1;
  s[2].answer_max_gap = 1; // below its largest gap: not backfill
  config::ped_config ped;
  ped_stats stats;
  describe_teacher(t, s, ped_rewards(t, s, ped), ped, stats);
  CHECK(stats.teacher_dialogs == 4);
  CHECK(stats.teacher_success == doctest::Approx(2.0 / 3));
  CHECK(stats.g == doctest::Approx(0.3));
  CHECK(stats.r_ped == doctest::Approx((0.5 + 0 + 0.3) / 3));
  CHECK(stats.leak_rate == doctest::Approx(1.0 / 3));
  CHECK(stats.answer_gap == doctest::Approx(2.0));
  CHECK(stats.backfill_rate == doctest::Approx(0.5));
  CHECK(stats.gap_max == doctest::Approx(2.0));
}

TEST_CASE("learner views to score: failed dialogs give empty sequences, answer marks kept") {
  std::vector<dialog_result> t = {dialog(1, 1.0), dialog(1, 0.0)};
  t[1].record.status = "failed";
  const auto views = learner_views(t);
  REQUIRE(views.size() == 2);
  CHECK(views[0].tokens == std::vector<int32_t>{1, 2, 7, 8});
  CHECK(views[0].answer == std::vector<uint8_t>{0, 0, 0, 1});
  CHECK(views[1].tokens.empty());
}
