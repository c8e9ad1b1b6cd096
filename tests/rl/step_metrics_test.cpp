// The metrics line carries every documented field, each from its own source, and the step line
// counts steps from 1 and carries the figures a person watches.
#include "rl/step_metrics.hpp"

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
  time.rollout_s = 2.0;
  stats.generated_tokens = 500;
  stats.flat_groups = 0.25;
  const auto line = nlohmann::json::parse(metrics_line({3, 1, 4}, stats, report, time));
  std::set<std::string> keys;
  for (const auto& [key, value] : line.items())
    keys.insert(key);
  const std::set<std::string> documented = {"step",
                                            "epoch",
                                            "weights_version",
                                            "dialogs",
                                            "failed_dialogs",
                                            "flat_groups",
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
                                            "generated_tokens",
                                            "rollout_tokens_per_s",
                                            "learn_tokens_per_s",
                                            "elapsed_s",
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
  CHECK(line["flat_groups"] == 0.25);
  CHECK(line["rollout_tokens_per_s"] == 250.0);
  CHECK(line["learn_tokens_per_s"] == 75.0);
}

TEST_CASE("the step line counts steps from 1 and shows time, signal and throughput") {
  step_stats stats;
  stats.reward = 0.5;
  stats.flat_groups = 0.25;
  stats.failed = 2;
  stats.generated_tokens = 1000;
  models::learn_report report;
  report.kl = 0.0012;
  report.grad_norm = 0.85;
  report.learning_rate = 1e-6;
  report.trained_tokens = 600;
  step_timings time;
  time.rollout_s = 4.0;
  time.learn_s = 3.0;
  time.step_s = 7.5;
  const auto line = step_line({1, 40, 83.0, 720.0}, stats, report, time);
  CAPTURE(line);
  CHECK(line.rfind("step 1/40 | 0:01:23, ETA 0:12:00 | reward +0.500", 0) == 0);
  CHECK(line.find("| flat 25% |") != std::string::npos);
  CHECK(line.find("| failed 2 |") != std::string::npos);
  CHECK(line.find("| kl 1.2e-03 |") != std::string::npos);
  CHECK(line.find("| grad 0.85 |") != std::string::npos);
  CHECK(line.find("| lr 1.0e-06 |") != std::string::npos);
  CHECK(line.find("| 250 tok/s rollout, 200 tok/s learn |") != std::string::npos);
  // The last step has nothing left; an unknown ETA is "?".
  CHECK(step_line({40, 40, 10.0, -1.0}, stats, report, time).find("ETA 0:00:00") !=
        std::string::npos);
  CHECK(step_line({2, 40, 10.0, -1.0}, stats, report, time).find("ETA ?") != std::string::npos);
}
