// The metrics line carries every field the README names, each from its own source, and the
// progress line counts steps from 1.
#include "actors/step_metrics.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <set>

using namespace pedagogy;
using namespace pedagogy::actors;

TEST_CASE("the metrics line has every documented field, each from its own source") {
  step_stats stats;
  stats.dialogs = 16;
  stats.failed = 1;
  stats.reward = 0.25;
  stats.solve_rate = 0.5;
  stats.rejected = 0.125;
  stats.reject_rate_by_rule = {{"does_not_leak_answer", 0.125}};
  stats.advantage_std = 0.9;
  models::learn_report report;
  report.loss = -0.01;
  report.grad_norm = 2.5;
  report.skipped_passes = 1;
  report.trained_tokens = 300;
  step_timings time;
  time.learn_s = 4.0;
  time.rollout_wait_s = 1.5;
  const auto line = nlohmann::json::parse(metrics_line({3, 1, 4}, stats, report, time));
  std::set<std::string> keys;
  for (const auto& [key, value] : line.items())
    keys.insert(key);
  const std::set<std::string> documented = {"step",
                                            "epoch",
                                            "weights_version",
                                            "dialogs",
                                            "failed_dialogs",
                                            "reward",
                                            "reward_end",
                                            "reward_thinking",
                                            "reward_end_marker",
                                            "reward_length",
                                            "solve_rate",
                                            "rejected",
                                            "reject_rate_by_rule",
                                            "loss",
                                            "pg_loss",
                                            "kl",
                                            "clip_fraction",
                                            "grad_norm",
                                            "learning_rate",
                                            "behaviour_kl",
                                            "advantage_mean",
                                            "advantage_std",
                                            "advantage_min",
                                            "advantage_max",
                                            "tutor_turns",
                                            "tutor_tokens",
                                            "trained_tokens",
                                            "sequences",
                                            "optimizer_steps",
                                            "skipped_passes",
                                            "rollout_s",
                                            "rollout_wait_s",
                                            "learn_s",
                                            "sync_s",
                                            "checkpoint_s",
                                            "step_s"};
  CHECK(keys == documented);
  CHECK(line["step"] == 3);
  CHECK(line["epoch"] == 1);
  CHECK(line["weights_version"] == 4);
  CHECK(line["failed_dialogs"] == 1);
  CHECK(line["reward"] == 0.25);
  CHECK(line["reject_rate_by_rule"]["does_not_leak_answer"] == 0.125);
  CHECK(line["advantage_std"] == 0.9);
  CHECK(line["grad_norm"] == 2.5);
  CHECK(line["skipped_passes"] == 1);
  CHECK(line["learn_s"] == 4.0);
  CHECK(line["rollout_wait_s"] == 1.5);
}

TEST_CASE("the progress line counts steps from 1") {
  step_stats stats;
  stats.reward = 0.5;
  const auto line = progress_line(0, 40, stats, {}, {});
  CHECK(line.rfind("step 1/40 | reward +0.500", 0) == 0);
}
