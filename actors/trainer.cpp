// The RL step loop (see trainer.hpp).
#include "actors/trainer.hpp"

#include "actors/learner_actor.hpp"
#include "actors/rollout.hpp"
#include "actors/setup.hpp"
#include "classroom/problems.hpp"
#include "classroom/record.hpp"
#include "models/grpo.hpp"
#include "models/training_batch.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"
#include "runtime/seeds.hpp"
#include "runtime/weight_channel.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <future>
#include <map>
#include <numeric>
#include <regex>

namespace pedagogy::actors {

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// The problems of every epoch in a seeded order (a portable Fisher-Yates shuffle).
std::vector<int64_t> epoch_order(int64_t problems, int64_t epoch, int64_t seed, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(problems));
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle)
    return order;
  uint64_t state =
    static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch);
  for (size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[splitmix64(state) % i]);
  return order;
}

// Keeps the lines of a JSONL file whose "step" is below `step` (a resumed run rewrites what
// came after its checkpoint). Written to a temporary file first, then renamed.
void keep_steps_before(const fs::path& path, int64_t step) {
  if (!fs::exists(path))
    return;
  std::ifstream in(path);
  const fs::path partial = path.string() + ".partial";
  {
    std::ofstream out(partial, std::ios::trunc);
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.contains("step") && j["step"].get<int64_t>() < step)
        out << line << '\n';
    }
  }
  fs::rename(partial, path);
}

// The checkpoints of a run, oldest first: <dir>/step-000123 with trainer_state.json.
std::vector<std::pair<int64_t, fs::path>> checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::exists(dir))
    return out;
  const std::regex name(R"(step-(\d+))");
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (entry.is_directory() && std::regex_match(file, m, name) &&
        fs::exists(entry.path() / "trainer_state.json"))
      out.emplace_back(std::stoll(m[1].str()), entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct mean_of {
  double sum = 0;
  int64_t n = 0;
  void add(double x) {
    sum += x;
    ++n;
  }
  double value() const {
    return n ? sum / static_cast<double>(n) : 0.0;
  }
};

} // namespace

int train(const config::config& cfg, const std::string& resolved_toml, const train_options& opts) {
  const auto& t = cfg.train;
  if (cfg.cluster.mode == config::cluster_mode::mpi)
    throw input_error("cluster.mode", "multi-rank training is not built yet",
                      "use cluster.mode = \"local\"");
  if (cfg.cluster.weight_channel == config::weight_channel_kind::mpi ||
      cfg.cluster.weight_channel == config::weight_channel_kind::nccl)
    throw input_error("cluster.weight_channel", "only the local weight channel is built yet",
                      "use cluster.weight_channel = \"auto\" or \"local\"");
  const fs::path run_dir = cfg.logging.run_dir;
  const fs::path ckpt_dir =
    cfg.checkpoint.dir.empty() ? run_dir / "checkpoints" : fs::path(cfg.checkpoint.dir);
  const fs::path metrics_path = run_dir / "metrics.jsonl";
  const fs::path dialogs_path = run_dir / "dialogs.jsonl";

  // What to continue from, decided before anything is written.
  int64_t start_step = 0;
  fs::path resume_dir;
  if (opts.resume) {
    auto found = checkpoints(ckpt_dir);
    if (found.empty())
      throw input_error(ckpt_dir.string(), "no checkpoint to resume from",
                        "run without --resume to start, or point checkpoint.dir at the run");
    start_step = found.back().first;
    resume_dir = found.back().second;
  } else if (fs::exists(metrics_path) && !opts.force) {
    throw input_error(run_dir.string(), "the run folder holds an earlier run (metrics.jsonl)",
                      "pass --resume to continue it, --force to start over, or choose another "
                      "logging.run_dir");
  }

  auto problems = classroom::load_problems(
    cfg.data.train, {cfg.data.problem_field, cfg.data.answer_field}, cfg.data.max_problems);
  const int64_t per_step = t.problems_per_step;
  const auto steps_per_epoch = static_cast<int64_t>(problems.size()) / per_step;
  if (steps_per_epoch == 0)
    throw input_error(cfg.data.train,
                      fmt::format("{} problems, fewer than train.problems_per_step = {}",
                                  problems.size(), per_step),
                      "lower train.problems_per_step or add problems");
  const int64_t total_steps = t.max_steps > 0 ? t.max_steps : t.epochs * steps_per_epoch;
  auto setup = make_classroom_setup(cfg);

  fs::create_directories(run_dir);
  if (opts.force && !opts.resume) {
    fs::remove(metrics_path);
    fs::remove(dialogs_path);
    fs::remove_all(ckpt_dir);
  }
  if (cfg.logging.log_file) {
    log::options lo;
    lo.levels = cfg.logging.level;
    lo.file = (run_dir / "pedagogy.log").string();
    log::setup(lo);
  }
  auto logger = log::get("trainer");
  std::ofstream(run_dir / "config.toml") << resolved_toml;
  if (opts.resume) {
    keep_steps_before(metrics_path, start_step);
    keep_steps_before(dialogs_path, start_step);
    logger->info("resuming from {} (step {})", resume_dir.string(), start_step);
  }
  if (cfg.cluster.torch_threads > 0)
    at::set_num_threads(static_cast<int>(cfg.cluster.torch_threads));

  caf::actor_system_config sc;
  configure_actor_system(sc, cfg, false);
  caf::actor_system system{sc};
  auto channel = std::make_shared<local_weight_channel>();
  const auto seed = static_cast<uint64_t>(t.seed);
  ensure_model(cfg.tutor, "tutor", seed);
  if (!opts.make_student)
    ensure_model(cfg.student, "student", seed + 1);

  // The tutor generator starts from the checkpoint's weights when resuming.
  auto tutor_cfg = cfg.tutor;
  if (opts.resume)
    tutor_cfg.model = resume_dir.string();
  role_generators generators;
  generators.tutor = spawn_role_generator(system, tutor_cfg, "tutor", channel);
  generators.student = opts.make_student ? opts.make_student(system)
                                         : spawn_role_generator(system, cfg.student, "student");
  if (needs_judge_generator(cfg)) {
    ensure_model(cfg.judge, "judge", seed + 2);
    generators.judge = spawn_role_generator(system, cfg.judge, "judge");
  }

  learner_setup ls;
  ls.model = cfg.tutor.model;
  ls.resume = resume_dir;
  ls.device = cfg.tutor.device;
  ls.weights = channel;
  ls.options = learner_options_from(cfg, total_steps);
  auto learner = spawn_learner(system, ls);

  std::ofstream metrics(metrics_path, std::ios::app);
  std::ofstream dialogs;
  if (cfg.logging.save_dialogs)
    dialogs.open(dialogs_path, std::ios::app);
  caf::scoped_actor self{system};
  auto fail = [&](const std::string& what, const caf::error& e) {
    throw std::runtime_error(fmt::format("{}: {}", what, system.render(e)));
  };
  if (cfg.inspect.enabled)
    logger->info("live inspection over HTTP ([inspect]) is not built yet; nothing is served");
  logger->info("training: {} problems, {} steps of {} problems x {} samples, run folder {}",
               problems.size(), total_steps, per_step, t.samples_per_problem, run_dir.string());

  // One step's dialogs (run on a thread of its own, so that with max_staleness = 1 the next
  // step's rollouts overlap this step's learning; the dialogs file is only written from there).
  struct rollout_out {
    std::vector<dialog_result> results;
    double seconds = 0;
    int64_t epoch = 0;
  };
  auto rollout_step = [&](int64_t step) {
    const auto begin = clock_type::now();
    const int64_t epoch = step / steps_per_epoch;
    const auto order =
      epoch_order(static_cast<int64_t>(problems.size()), epoch, t.seed, cfg.data.shuffle);
    const auto offset = static_cast<size_t>((step % steps_per_epoch) * per_step);
    std::vector<int64_t> picked(order.begin() + static_cast<std::ptrdiff_t>(offset),
                                order.begin() + static_cast<std::ptrdiff_t>(offset) + per_step);
    auto jobs = make_jobs(step, problems, picked, t.samples_per_problem, seed);
    rollout_out out;
    out.results =
      run_rollout(system, setup, generators, std::move(jobs), [&](const dialog_result& r) {
        if (dialogs.is_open())
          dialogs << classroom::to_json_line(r.record) << '\n';
      });
    if (dialogs.is_open())
      dialogs.flush();
    out.seconds = since(begin);
    out.epoch = epoch;
    return out;
  };
  auto launch = [&](int64_t step) {
    return std::async(std::launch::async, rollout_step, step);
  };

  const auto run_start = clock_type::now();
  std::future<rollout_out> pending;
  if (start_step < total_steps)
    pending = launch(start_step);
  for (int64_t step = start_step; step < total_steps; ++step) {
    const auto step_start = clock_type::now();
    auto rolled = pending.get();
    const double rollout_wait_s = since(step_start);
    // Off-policy by one step: the next dialogs start now, under the weights of this step, and
    // the tutor takes the new weights mid-rollout (tokens carry their version; the learner
    // compares with the behaviour log-probs recorded at sampling).
    if (t.max_staleness == 1 && step + 1 < total_steps)
      pending = launch(step + 1);
    auto& results = rolled.results;
    const int64_t epoch = rolled.epoch;
    const double rollout_s = rolled.seconds;

    // Rewards -> group advantages -> training sequences (failed dialogs sit out).
    rollout_batch batch;
    std::vector<double> all_advantages;
    mean_of reward, end, thinking, end_marker, length, solve_rate, turns, tutor_tokens, rejected;
    std::map<std::string, mean_of> rule_rejects;
    int64_t failed = 0;
    const auto g = static_cast<size_t>(t.samples_per_problem);
    for (size_t group = 0; group < results.size(); group += g) {
      std::vector<double> rewards;
      std::vector<size_t> members;
      for (size_t i = group; i < group + g; ++i) {
        const auto& r = results[i].record;
        if (r.status != "ok" || results[i].tutor.tokens.empty()) {
          ++failed;
          continue;
        }
        rewards.push_back(r.reward.total);
        members.push_back(i);
        reward.add(r.reward.total);
        end.add(r.reward.end);
        thinking.add(r.reward.thinking);
        end_marker.add(r.reward.end_marker);
        length.add(r.reward.length);
        if (r.reward.solve_rate)
          solve_rate.add(*r.reward.solve_rate);
        turns.add(static_cast<double>(r.tutor_turns));
        tutor_tokens.add(static_cast<double>(r.tutor_tokens));
        rejected.add(r.rejected ? 1.0 : 0.0);
        for (const auto& rule : cfg.classroom.judge_rules) {
          double hit = 0;
          for (const auto& j : r.judgements)
            hit = std::max(hit, j.rule == rule && j.rejected() ? 1.0 : 0.0);
          rule_rejects[rule].add(hit);
        }
      }
      if (rewards.empty())
        continue;
      const auto adv = models::group_advantages(rewards, static_cast<int64_t>(rewards.size()),
                                                t.scale_rewards, t.std_eps);
      for (size_t k = 0; k < members.size(); ++k) {
        batch.sequences.push_back(models::from_history(results[members[k]].tutor, adv[k]));
        all_advantages.push_back(adv[k]);
      }
    }

    if (batch.sequences.empty()) {
      const auto& first = results.front().record;
      throw std::runtime_error(fmt::format(
        "every dialog of step {} failed; the first ({}) with: {}", step, first.id, first.error));
    }

    // Learning.
    const auto learn_start = clock_type::now();
    models::learn_report report;
    self->request(learner, caf::infinite, learn_atom::value, batch)
      .receive([&](models::learn_report& r) { report = r; },
               [&](caf::error& e) { fail("learning failed", e); });
    const double learn_s = since(learn_start);

    // Weight sync: the learner offers version step + 1, the tutor generator takes it.
    const auto sync_start = clock_type::now();
    const int64_t version = step + 1;
    self->request(learner, caf::infinite, publish_atom::value, version)
      .receive([](int64_t) {}, [&](caf::error& e) { fail("publishing weights failed", e); });
    self->request(generators.tutor, caf::infinite, weights_atom::value, version)
      .receive([](int64_t) {}, [&](caf::error& e) { fail("the tutor could not take weights", e); });
    const double sync_s = since(sync_start);

    // Checkpoint.
    const auto ckpt_start = clock_type::now();
    const bool last = step + 1 == total_steps;
    const int64_t every = cfg.checkpoint.every_steps;
    if (last || (every > 0 && (step + 1) % every == 0)) {
      const fs::path dir = ckpt_dir / fmt::format("step-{:06d}", step + 1);
      self->request(learner, caf::infinite, save_atom::value, dir.string())
        .receive([](int64_t) {}, [&](caf::error& e) { fail("saving the checkpoint failed", e); });
      nlohmann::json state = {{"step", step + 1},
                              {"weights_version", version},
                              {"optimizer_steps", report.optimizer_steps},
                              {"seed", t.seed},
                              {"config", resolved_toml}};
      std::ofstream(dir / "trainer_state.json") << state.dump(2) << '\n';
      auto found = checkpoints(ckpt_dir);
      const auto keep = static_cast<size_t>(cfg.checkpoint.keep_last);
      for (size_t i = 0; keep > 0 && i + keep < found.size(); ++i)
        fs::remove_all(found[i].second);
      logger->info("checkpoint {}", dir.string());
    }
    const double ckpt_s = since(ckpt_start);

    // Metrics.
    double adv_mean = 0, adv_sq = 0, adv_min = 0, adv_max = 0;
    if (!all_advantages.empty()) {
      adv_min = *std::min_element(all_advantages.begin(), all_advantages.end());
      adv_max = *std::max_element(all_advantages.begin(), all_advantages.end());
      for (double a : all_advantages)
        adv_mean += a;
      adv_mean /= static_cast<double>(all_advantages.size());
      for (double a : all_advantages)
        adv_sq += (a - adv_mean) * (a - adv_mean);
    }
    nlohmann::json rules = nlohmann::json::object();
    for (const auto& [rule, m] : rule_rejects)
      rules[rule] = m.value();
    nlohmann::json line = {
      {"step", step},
      {"epoch", epoch},
      {"weights_version", version},
      {"dialogs", results.size()},
      {"failed_dialogs", failed},
      {"reward", reward.value()},
      {"reward_end", end.value()},
      {"reward_thinking", thinking.value()},
      {"reward_end_marker", end_marker.value()},
      {"reward_length", length.value()},
      {"solve_rate", solve_rate.value()},
      {"rejected", rejected.value()},
      {"reject_rate_by_rule", rules},
      {"loss", report.loss},
      {"pg_loss", report.pg_loss},
      {"kl", report.kl},
      {"clip_fraction", report.clip_fraction},
      {"grad_norm", report.grad_norm},
      {"learning_rate", report.learning_rate},
      {"behaviour_kl", report.behaviour_kl},
      {"advantage_mean", adv_mean},
      {"advantage_std", all_advantages.size() > 1
                          ? std::sqrt(adv_sq / static_cast<double>(all_advantages.size() - 1))
                          : 0.0},
      {"advantage_min", adv_min},
      {"advantage_max", adv_max},
      {"tutor_turns", turns.value()},
      {"tutor_tokens", tutor_tokens.value()},
      {"trained_tokens", report.trained_tokens},
      {"sequences", report.sequences},
      {"optimizer_steps", report.optimizer_steps},
      {"rollout_s", rollout_s},
      {"rollout_wait_s", rollout_wait_s},
      {"learn_s", learn_s},
      {"sync_s", sync_s},
      {"checkpoint_s", ckpt_s},
      {"step_s", since(step_start)},
    };
    metrics << line.dump() << '\n';
    metrics.flush();
    if (cfg.logging.print_every_steps > 0 && (step + 1) % cfg.logging.print_every_steps == 0)
      logger->info("step {}/{} | reward {:+.3f} | solve {:.2f} | rejected {:.0f}% | loss {:+.4f} "
                   "| kl(behaviour) {:.1e} | {:.1f}s (rollout {:.1f}, learn {:.1f}, sync {:.2f})",
                   step + 1, total_steps, reward.value(), solve_rate.value(),
                   100 * rejected.value(), report.loss, report.behaviour_kl, since(step_start),
                   rollout_s, learn_s, sync_s);
    if (t.max_staleness == 0 && step + 1 < total_steps)
      pending = launch(step + 1);
  }
  logger->info("done: {} steps in {:.1f} s; metrics in {}", total_steps - start_step,
               since(run_start), metrics_path.string());
  for (auto* a : {&generators.tutor, &generators.student, &generators.judge})
    if (*a)
      caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(learner, caf::exit_reason::user_shutdown);
  return 0;
}

} // namespace pedagogy::actors
