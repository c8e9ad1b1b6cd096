// The metrics line and the progress line of a step (see step_metrics.hpp).
#include "actors/step_metrics.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pedagogy::actors {

std::string metrics_line(const step_identity& id, const step_stats& stats,
                         const models::learn_report& report, const step_timings& time) {
  nlohmann::json rules = nlohmann::json::object();
  for (const auto& [rule, rate] : stats.reject_rate_by_rule)
    rules[rule] = rate;
  const nlohmann::json line = {
    {"step", id.step},
    {"epoch", id.epoch},
    {"weights_version", id.weights_version},
    {"dialogs", stats.dialogs},
    {"failed_dialogs", stats.failed},
    {"reward", stats.reward},
    {"reward_end", stats.reward_end},
    {"reward_thinking", stats.reward_thinking},
    {"reward_end_marker", stats.reward_end_marker},
    {"reward_length", stats.reward_length},
    {"solve_rate", stats.solve_rate},
    {"rejected", stats.rejected},
    {"reject_rate_by_rule", rules},
    {"loss", report.loss},
    {"pg_loss", report.pg_loss},
    {"kl", report.kl},
    {"clip_fraction", report.clip_fraction},
    {"grad_norm", report.grad_norm},
    {"learning_rate", report.learning_rate},
    {"behaviour_kl", report.behaviour_kl},
    {"advantage_mean", stats.advantage_mean},
    {"advantage_std", stats.advantage_std},
    {"advantage_min", stats.advantage_min},
    {"advantage_max", stats.advantage_max},
    {"tutor_turns", stats.tutor_turns},
    {"tutor_tokens", stats.tutor_tokens},
    {"trained_tokens", report.trained_tokens},
    {"sequences", report.sequences},
    {"optimizer_steps", report.optimizer_steps},
    {"skipped_passes", report.skipped_passes},
    {"rollout_s", time.rollout_s},
    {"rollout_wait_s", time.rollout_wait_s},
    {"learn_s", time.learn_s},
    {"sync_s", time.sync_s},
    {"checkpoint_s", time.checkpoint_s},
    {"step_s", time.step_s},
  };
  return line.dump();
}

std::string progress_line(int64_t step, int64_t total_steps, const step_stats& stats,
                          const models::learn_report& report, const step_timings& time) {
  return fmt::format("step {}/{} | reward {:+.3f} | solve {:.2f} | rejected {:.0f}% | loss "
                     "{:+.4f} | kl(behaviour) {:.1e} | {:.1f}s (rollout {:.1f}, learn {:.1f}, "
                     "sync {:.2f})",
                     step + 1, total_steps, stats.reward, stats.solve_rate, 100 * stats.rejected,
                     report.loss, report.behaviour_kl, time.step_s, time.rollout_s, time.learn_s,
                     time.sync_s);
}

} // namespace pedagogy::actors
