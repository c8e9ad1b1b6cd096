// The metrics line and the progress line of a step (see step_metrics.hpp).
#include "rl/step_metrics.hpp"

#include "inspect/progress.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pedagogy::actors {

namespace {

// Pedagogical RL's part of a step's line, under "ped".
nlohmann::json ped_fields(const ped_step_metrics& ped, const models::learn_report& report) {
  const auto& p = ped.stats;
  return {
    {"rollouts", p.rollouts},
    {"rescued_groups", p.rescued_groups},
    {"teacher_dialogs", p.teacher_dialogs},
    {"teacher_reward", p.teacher_reward},
    {"teacher_success", p.teacher_success},
    {"g", p.g},
    {"r_ped", p.r_ped},
    {"gap_mean", p.gap_mean},
    {"gap_max", p.gap_max},
    {"answer_gap", p.answer_gap},
    {"leak_rate", p.leak_rate},
    {"backfill_rate", p.backfill_rate},
    {"corpus_kept", p.corpus_kept},
    {"corpus_coverage", p.corpus_coverage},
    {"corpus_g", p.corpus_g},
    {"imitated_sequences", report.imitated_sequences},
    {"imitation_loss", report.imitation_loss},
    {"gate_mean", report.gate_mean},
    {"gate_min", report.gate_min},
    {"gate_below", report.gate_below},
    {"teacher_loss", ped.teacher.loss},
    {"teacher_grad_norm", ped.teacher.grad_norm},
    {"teacher_rollout_s", p.teacher_rollout_s},
    {"score_s", p.score_s},
    {"teacher_learn_s", p.teacher_learn_s},
  };
}

} // namespace

std::string metrics_line(const step_identity& id, const step_stats& stats,
                         const models::learn_report& report, const step_timings& time,
                         const ped_step_metrics* ped) {
  nlohmann::json rules = nlohmann::json::object();
  for (const auto& [rule, rate] : stats.reject_rate_by_rule)
    rules[rule] = rate;
  const nlohmann::json line = {
    {"step", id.step},
    {"epoch", id.epoch},
    {"weights_version", id.weights_version},
    {"dialogs", stats.dialogs},
    {"failed_dialogs", stats.failed},
    {"flat_groups", stats.flat_groups},
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
    {"generated_tokens", stats.generated_tokens},
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
    {"rollout_tokens_per_s",
     per_second(static_cast<double>(stats.generated_tokens), time.rollout_s)},
    {"learn_tokens_per_s", per_second(report.trained_tokens, time.learn_s)},
    {"elapsed_s", time.elapsed_s},
  };
  if (ped == nullptr)
    return line.dump();
  nlohmann::json out = line;
  out["ped"] = ped_fields(*ped, report);
  return out.dump();
}

double per_second(double tokens, double seconds) {
  return seconds > 0 ? tokens / seconds : 0.0;
}

std::string step_line(const run_position& at, const step_stats& stats,
                      const models::learn_report& report, const step_timings& time) {
  return fmt::format(
    "step {}/{} | {}, ETA {} | reward {:+.3f} | solve {:.2f} | rejected {:.0f}% | flat {:.0f}% | "
    "failed {} | loss {:+.4f} | kl {:.1e} | grad {:.3g} | lr {:.1e} | {:.0f} tok/s rollout, "
    "{:.0f} tok/s learn | {:.1f}s (rollout {:.1f}, learn {:.1f}, sync {:.2f}) | kl(behaviour) "
    "{:.1e}",
    at.step, at.total_steps, duration_text(at.elapsed_s),
    at.step >= at.total_steps ? "0:00:00" : duration_text(at.eta_s), stats.reward, stats.solve_rate,
    100 * stats.rejected, 100 * stats.flat_groups, stats.failed, report.loss, report.kl,
    report.grad_norm, report.learning_rate,
    per_second(static_cast<double>(stats.generated_tokens), time.rollout_s),
    per_second(report.trained_tokens, time.learn_s), time.step_s, time.rollout_s, time.learn_s,
    time.sync_s, report.behaviour_kl);
}

} // namespace pedagogy::actors
