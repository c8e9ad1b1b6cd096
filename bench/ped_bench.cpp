// `pedagogy bench ped`: Pedagogical RL's modes against plain GRPO on the recall task
// (bench/ped_task.hpp), at the same number of rollouts. Each mode trains the same warmed-up solver
// with a checkpoint after every step; the checkpoint at which the mode's rollouts (its own samples
// plus the ped_teacher's) first reach the budget is then evaluated by sampling every problem
// `eval_samples` times. The scoring pass's share of the steps' time is measured in the same runs.
#include "actors/rollout.hpp"
#include "bench/bench.hpp"
#include "bench/ped_task.hpp"
#include "classroom/problems.hpp"
#include "config/config.hpp"
#include "config/fields.hpp"
#include "jobs/setup.hpp"
#include "jobs/train_local.hpp"
#include "runtime/errors.hpp"

#include <ATen/Parallel.h>
#include <caf/all.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace pedagogy::bench {

namespace {

namespace fs = std::filesystem;

struct mode_run {
  std::string name;
  int64_t steps = 0;          // steps trained to reach the budget
  double rollouts = 0;        // rollouts up to that step
  double train_reward = 0;    // the mean reward of the mode's own samples at that step
  double eval_reward = 0;     // the policy of that step, sampled afresh
  double score_share = 0;     // scoring pass seconds / step seconds
  double seconds = 0;         // wall time of the training
  double teacher_success = 0; // the ped_teacher's success rate over the run
};

config::config mode_config(const ped_options& o, const recall_task& task, const fs::path& run,
                           config::ped_mode mode) {
  auto cfg = recall_config(config::load_file(o.config), task, mode, o.problems, o.samples);
  cfg.train.max_steps = o.steps;
  cfg.logging.run_dir = run.string();
  cfg.checkpoint.every_steps = 1; // the policy at the budget is evaluated from its checkpoint
  cfg.checkpoint.keep_last = 0;
  config::validate(cfg, "bench ped");
  return cfg;
}

// The mean reward of `checkpoint` on every problem, `samples` times each.
double evaluate(const config::config& cfg, const fs::path& checkpoint, int64_t samples) {
  caf::actor_system_config sc;
  actors::configure_actor_system(sc, cfg, false);
  caf::actor_system system{sc};
  auto role = cfg.tutor;
  role.model = checkpoint.string();
  actors::role_generators generators{
    actors::spawn_role_generator(system, role, "tutor"), spawn_idle_student(system), {}};
  const auto problems = classroom::load_problems(cfg.data.train, {}, 0, 0);
  std::vector<int64_t> all;
  for (size_t i = 0; i < problems.size(); ++i)
    all.push_back(static_cast<int64_t>(i));
  const auto results = actors::run_rollout(system, actors::make_classroom_setup(cfg), generators,
                                           actors::make_jobs(0, problems, all, samples, 1234));
  caf::anon_send_exit(generators.tutor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(generators.student, caf::exit_reason::user_shutdown);
  double sum = 0;
  for (const auto& r : results)
    sum += r.record.reward.total;
  return results.empty() ? 0.0 : sum / static_cast<double>(results.size());
}

mode_run run_mode(const ped_options& o, const recall_task& task, const fs::path& dir,
                  config::ped_mode mode, double budget) {
  mode_run out;
  out.name = std::string(config::to_string(mode));
  const auto cfg = mode_config(o, task, dir / out.name, mode);
  actors::train_options to;
  to.force = true;
  to.make_student = spawn_idle_student;
  const auto start = std::chrono::steady_clock::now();
  if (actors::train(cfg, config::to_toml(cfg), to) != 0)
    throw std::runtime_error(fmt::format("bench ped: training in mode {} failed", out.name));
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::ifstream in(dir / out.name / "metrics.jsonl");
  double score_s = 0, step_s = 0, teacher = 0, teacher_ok = 0;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    out.steps = j["step"].get<int64_t>(); // 1-based: the N-th step's checkpoint is step-N
    out.train_reward = j["reward"].get<double>();
    step_s += j["step_s"].get<double>();
    if (j.contains("ped")) {
      const auto& p = j["ped"];
      out.rollouts += p["rollouts"].get<double>();
      score_s += p["score_s"].get<double>();
      teacher += p["teacher_dialogs"].get<double>();
      teacher_ok += p["teacher_dialogs"].get<double>() * p["teacher_success"].get<double>();
    } else {
      out.rollouts += j["dialogs"].get<double>();
    }
    if (out.rollouts >= budget)
      break;
  }
  out.score_share = step_s > 0 ? score_s / step_s : 0.0;
  out.teacher_success = teacher > 0 ? teacher_ok / teacher : 0.0;
  out.eval_reward = evaluate(
    cfg, dir / out.name / "checkpoints" / fmt::format("step-{:06d}", out.steps), o.eval_samples);
  return out;
}

} // namespace

figures ped(const ped_options& options) {
  PEDAGOGY_CHECK(options.steps >= 1 && options.problems >= 1 && options.samples >= 2,
                 "bad bench ped options");
  if (!fs::exists(options.config))
    throw input_error(options.config.string(), "no such config",
                      "run from the repository root or pass --config FILE");
  if (options.threads > 0)
    at::set_num_threads(options.threads);
  const auto dir = fs::temp_directory_path() / fmt::format("pedagogy_bench_ped_{}", getpid());
  recall_options ro;
  ro.problems = options.problems;
  ro.warmup_steps = options.warmup_steps;
  ro.source_templates = options.templates;
  const auto task = make_recall_task(dir / "task", ro);
  // The budget: what plain GRPO samples in `steps` steps. Every mode trains that many steps at
  // most; rescue, which also samples the ped_teacher, reaches the budget sooner.
  const double budget = static_cast<double>(options.steps * options.problems * options.samples);
  std::vector<mode_run> runs;
  for (auto mode : {config::ped_mode::off, config::ped_mode::rescue, config::ped_mode::rounds})
    runs.push_back(run_mode(options, task, dir, mode, budget));
  fs::remove_all(dir);

  figures f;
  f.title = "Pedagogical RL on the recall task: reward at the same number of rollouts";
  f.notes.push_back(fmt::format(
    "{} problems whose 3-digit answers a blind guess hits 1 time in 900; {} samples each; budget "
    "{:.0f} rollouts (ped_teacher samples count); a tiny solver warmed up to copy an answer in "
    "view (copy loss {:.3f} after {} initialisation(s))",
    options.problems, options.samples, budget, task.copy_loss, task.attempts));
  for (const auto& r : runs) {
    f.notes.push_back(fmt::format(
      "{:>7}: {:>3} steps, {:>5.0f} rollouts, {:>5.1f} s; reward of its own samples {:.3f}, of "
      "the step's policy sampled afresh {:.3f}; scoring {:.1f}% of the step time; ped_teacher "
      "success {:.2f}",
      r.name, r.steps, r.rollouts, r.seconds, r.train_reward, r.eval_reward, 100 * r.score_share,
      r.teacher_success));
    f.add(r.name + "_eval_reward", r.eval_reward);
    f.add(r.name + "_rollouts", r.rollouts);
    f.add(r.name + "_steps", static_cast<double>(r.steps));
    f.add(r.name + "_seconds", r.seconds);
    if (r.name != "off") {
      f.add(r.name + "_score_share", r.score_share);
      f.add(r.name + "_teacher_success", r.teacher_success);
    }
  }
  f.add("budget_rollouts", budget);
  f.add("rescue_minus_off", runs[1].eval_reward - runs[0].eval_reward);
  f.add("rounds_minus_off", runs[2].eval_reward - runs[0].eval_reward);
  return f;
}

} // namespace pedagogy::bench
