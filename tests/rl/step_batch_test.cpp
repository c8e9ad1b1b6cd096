// A step's dialogs -> GRPO groups -> training sequences and means: failed dialogs sit out of
// their group, each group is centred on its own mean, a group with no finished dialog trains
// nothing, and the step's means count only finished dialogs.
#include "rl/step_batch.hpp"
#include "tests/support/torch_doctest.hpp"

#include <cmath>

using namespace pedagogy;
using namespace pedagogy::actors;

namespace {

// A finished dialog with `reward`, whose tutor sampled `tokens` tokens after a 2-token prompt.
dialog_result finished(double reward, int tokens = 3, bool rejected_by_leak = false) {
  dialog_result r;
  r.record.reward.total = reward;
  r.record.reward.end = reward;
  r.record.reward.solve_rate = reward > 0 ? 1.0 : 0.0;
  r.record.tutor_turns = 1;
  r.record.tutor_tokens = tokens;
  r.record.rejected = rejected_by_leak;
  classroom::judge_record leak;
  leak.rule = "does_not_leak_answer";
  leak.verdicts.push_back(
    {rejected_by_leak ? classroom::decision::reject : classroom::decision::ok, ""});
  r.record.judgements.push_back(leak);
  r.tutor.tokens = {1, 2};
  r.tutor.sampled = {0, 0};
  r.tutor.logprobs = {0, 0};
  r.tutor.versions = {-1, -1};
  for (int i = 0; i < tokens; ++i) {
    r.tutor.tokens.push_back(10 + i);
    r.tutor.sampled.push_back(1);
    r.tutor.logprobs.push_back(-0.5f);
    r.tutor.versions.push_back(0);
  }
  return r;
}

dialog_result failed_dialog() {
  dialog_result r;
  r.record.status = "failed";
  r.record.error = "the engine fell over";
  return r;
}

group_options groups_of(int64_t g) {
  return {g, /*scale_rewards=*/false, 1e-4, {"does_not_leak_answer"}};
}

} // namespace

TEST_CASE("each group is centred on its own mean and failed dialogs sit out") {
  // Group 0: rewards 1, 0, (failed), 0.5 -> mean 0.5; group 1: 2, 4, 6, 8 -> mean 5.
  std::vector<dialog_result> results = {finished(1.0), finished(0.0), failed_dialog(),
                                        finished(0.5), finished(2.0), finished(4.0),
                                        finished(6.0), finished(8.0)};
  const auto out = make_step_batch(results, groups_of(4));
  REQUIRE(out.batch.sequences.size() == 7);
  const std::vector<double> expected = {0.5, -0.5, 0.0, -3.0, -1.0, 1.0, 3.0};
  for (size_t i = 0; i < expected.size(); ++i)
    CHECK(out.batch.sequences[i].advantage == doctest::Approx(expected[i]));
  CHECK(out.stats.dialogs == 8);
  CHECK(out.stats.failed == 1);
  CHECK(out.stats.reward == doctest::Approx((1.0 + 0 + 0.5 + 2 + 4 + 6 + 8) / 7));
  CHECK(out.stats.advantage_min == doctest::Approx(-3.0));
  CHECK(out.stats.advantage_max == doctest::Approx(3.0));
  CHECK(out.stats.advantage_mean == doctest::Approx(0.0));
}

TEST_CASE("a group whose dialogs all failed trains nothing, and others still do") {
  std::vector<dialog_result> results = {failed_dialog(), failed_dialog(), finished(1.0),
                                        finished(3.0)};
  const auto out = make_step_batch(results, groups_of(2));
  REQUIRE(out.batch.sequences.size() == 2);
  CHECK(out.batch.sequences[0].advantage == doctest::Approx(-1.0));
  CHECK(out.stats.failed == 2);
  CHECK(make_step_batch({failed_dialog(), failed_dialog()}, groups_of(2)).batch.sequences.empty());
}

TEST_CASE("a sequence is the tutor's exact history, trained where it sampled") {
  const auto out = make_step_batch({finished(1.0, 3), finished(0.0, 2)}, groups_of(2));
  REQUIRE(out.batch.sequences.size() == 2);
  const auto& first = out.batch.sequences[0];
  CHECK(first.tokens == std::vector<int32_t>{1, 2, 10, 11, 12});
  CHECK(first.trained == std::vector<uint8_t>{0, 0, 1, 1, 1});
  CHECK(out.stats.tutor_tokens == doctest::Approx(2.5));
}

TEST_CASE("reject rates are per rule over finished dialogs, and rewards scale by the std") {
  std::vector<dialog_result> results = {finished(0.0, 3, true), finished(2.0), finished(4.0),
                                        failed_dialog()};
  auto options = groups_of(4);
  options.scale_rewards = true;
  const auto out = make_step_batch(results, options);
  CHECK(out.stats.rejected == doctest::Approx(1.0 / 3));
  CHECK(out.stats.reject_rate_by_rule.at("does_not_leak_answer") == doctest::Approx(1.0 / 3));
  // Rewards 0, 2, 4: mean 2, unbiased std 2, so advantages -1, 0, 1 (up to std_eps).
  REQUIRE(out.batch.sequences.size() == 3);
  CHECK(out.batch.sequences[0].advantage == doctest::Approx(-1.0).epsilon(1e-3));
  CHECK(out.batch.sequences[2].advantage == doctest::Approx(1.0).epsilon(1e-3));
  CHECK(out.stats.advantage_std == doctest::Approx(1.0).epsilon(1e-3));
}
