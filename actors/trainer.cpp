// The RL step loop (see trainer.hpp).
#include "actors/trainer.hpp"

#include "actors/checkpoints.hpp"
#include "actors/learner_actor.hpp"
#include "actors/rollout.hpp"
#include "actors/run_folder.hpp"
#include "actors/setup.hpp"
#include "actors/step_batch.hpp"
#include "actors/step_metrics.hpp"
#include "actors/training_run.hpp"
#include "classroom/problems.hpp"
#include "classroom/record.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/ranks.hpp"
#include "runtime/seeds.hpp"
#include "runtime/signals.hpp"
#include "runtime/weight_channel.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <future>
#include <numeric>
#include <optional>
#include <sstream>

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
// came after its checkpoint); a partial last line never survives. Replaced atomically.
void keep_steps_before(const fs::path& path, int64_t step) {
  if (!fs::exists(path))
    return;
  std::ifstream in(path);
  std::ostringstream kept;
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof())
      break; // no '\n' after it: a line cut short by a crash
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
        j["step"].get<int64_t>() < step)
      kept << line << '\n';
  }
  if (in.bad())
    throw std::runtime_error(fmt::format("{}: reading failed", path.string()));
  files::write_atomically(path, kept.str());
}

bool non_empty(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && fs::file_size(path, ec) > 0;
}

// Stops the actors this run spawned on every way out of train(), so that the actor system's
// destructor (which waits for all actors) cannot hang after an error.
struct actor_stopper {
  std::vector<caf::actor> actors;
  ~actor_stopper() {
    for (auto& a : actors)
      if (a)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
};

} // namespace

prepared_run prepare_run(const config::config& cfg, const std::string& resolved_toml,
                         const train_options& opts) {
  const auto& t = cfg.train;
  const fs::path run_dir = cfg.logging.run_dir;
  const fs::path ckpt_dir =
    cfg.checkpoint.dir.empty() ? run_dir / "checkpoints" : fs::path(cfg.checkpoint.dir);
  const fs::path metrics_path = run_dir / "metrics.jsonl";
  const fs::path dialogs_path = run_dir / "dialogs.jsonl";
  prepared_run run;
  run.run_dir = run_dir;
  run.checkpoint_dir = ckpt_dir;
  const run_layout layout{run_dir, ckpt_dir, {cfg.tutor.model, cfg.student.model, cfg.judge.model}};

  // One run per folder: a second one refuses here instead of deleting the first one's files.
  fs::create_directories(run_dir);
  run.lock = std::make_unique<run_lock>(run_dir);
  // Two runs with their own run folders but one checkpoint.dir would overwrite each other's
  // step-N folders: the checkpoint folder is locked too when it lies elsewhere.
  if (fs::weakly_canonical(fs::absolute(ckpt_dir)) != fs::weakly_canonical(fs::absolute(run_dir))) {
    fs::create_directories(ckpt_dir);
    run.checkpoint_lock = std::make_unique<run_lock>(ckpt_dir);
  }
  std::vector<std::string> notes; // said once the log file is set up
  if (const auto removed = remove_temporaries(ckpt_dir); removed > 0)
    notes.push_back(
      fmt::format("removed {} unfinished checkpoint folder(s) in {}", removed, ckpt_dir.string()));

  // What to continue from, decided before anything is written: the newest intact checkpoint.
  int64_t start_step = 0;
  fs::path resume_dir;
  if (opts.resume) {
    auto found = list_checkpoints(ckpt_dir);
    if (found.empty())
      throw input_error(ckpt_dir.string(), "no checkpoint to resume from",
                        "run without --resume to start, or point checkpoint.dir at the run");
    std::string broken;
    for (auto it = found.rbegin(); it != found.rend() && resume_dir.empty(); ++it) {
      if (auto problem = checkpoint_problem(it->dir); !problem.empty()) {
        notes.push_back(fmt::format("checkpoint {} is damaged ({}); trying an older one",
                                    it->dir.string(), problem));
        broken = problem;
        continue;
      }
      start_step = it->step;
      resume_dir = it->dir;
    }
    if (resume_dir.empty())
      throw input_error(ckpt_dir.string(), "every checkpoint is damaged; the newest: " + broken,
                        "start over with --force, or restore a checkpoint from a copy");
  } else if ((non_empty(metrics_path) || !list_checkpoints(ckpt_dir).empty()) && !opts.force) {
    throw input_error(run_dir.string(), "the run folder holds an earlier run (metrics.jsonl)",
                      "pass --resume to continue it, --force to start over, or choose another "
                      "logging.run_dir");
  }

  // The same seeded sample as `pedagogy rollout` takes with this config.
  auto problems =
    classroom::load_problems(cfg.data.train, {cfg.data.problem_field, cfg.data.answer_field},
                             cfg.data.max_problems, static_cast<uint64_t>(t.seed));
  const int64_t per_step = t.problems_per_step;
  const auto steps_per_epoch = static_cast<int64_t>(problems.size()) / per_step;
  if (steps_per_epoch == 0)
    throw input_error(cfg.data.train,
                      fmt::format("{} problems, fewer than train.problems_per_step = {}",
                                  problems.size(), per_step),
                      "lower train.problems_per_step or add problems");
  const int64_t total_steps = t.max_steps > 0 ? t.max_steps : t.epochs * steps_per_epoch;
  // Templates are checked before anything is deleted or loaded.
  make_classroom_setup(cfg);

  // Starting over deletes only this program's outputs, and nothing at all when the folder
  // holds anything else.
  if (opts.force && !opts.resume)
    clear_run_outputs(layout);
  if (cfg.logging.log_file) {
    log::options lo;
    lo.levels = cfg.logging.level;
    lo.file = (run_dir / "pedagogy.log").string();
    log::setup(lo);
  }
  auto logger = log::get("trainer");
  for (const auto& note : notes)
    logger->warn("{}", note);
  files::write_atomically(run_dir / "config.toml", resolved_toml);
  if (opts.resume) {
    keep_steps_before(metrics_path, start_step);
    keep_steps_before(dialogs_path, start_step);
    logger->info("resuming from {} (step {})", resume_dir.string(), start_step);
  }
  run.problems = std::move(problems);
  run.steps_per_epoch = steps_per_epoch;
  run.total_steps = total_steps;
  run.start_step = start_step;
  run.resume_dir = resume_dir;
  return run;
}

int train(const config::config& cfg, const std::string& resolved_toml, const train_options& opts) {
  if (ranks::launched_by_mpi() || cfg.cluster.mode == config::cluster_mode::mpi)
    return train_multi_rank(cfg, resolved_toml, opts);
  plan_placement(cfg, 1); // refuses multi-rank knobs in one process
  auto run = prepare_run(cfg, resolved_toml, opts);
  if (cfg.cluster.torch_threads > 0)
    at::set_num_threads(static_cast<int>(cfg.cluster.torch_threads));

  caf::actor_system_config sc;
  configure_actor_system(sc, cfg, false);
  caf::actor_system system{sc};
  actor_stopper stopper;
  // One taker (the tutor generator), and nobody waits longer for weights than for any request.
  auto channel = std::make_shared<local_weight_channel>(1, request_timeout_of(cfg));
  const auto seed = static_cast<uint64_t>(cfg.train.seed);
  ensure_model(cfg.tutor, "tutor", seed);
  if (!opts.make_student)
    ensure_model(cfg.student, "student", seed + 1);

  // The tutor generator starts from the checkpoint's weights when resuming.
  auto tutor_cfg = cfg.tutor;
  if (!run.resume_dir.empty())
    tutor_cfg.model = run.resume_dir.string();
  job_actors actors;
  auto& generators = actors.generators;
  generators.tutor = spawn_role_generator(system, tutor_cfg, "tutor", channel);
  stopper.actors.push_back(caf::actor_cast<caf::actor>(generators.tutor));
  actors.tutors.push_back(generators.tutor);
  generators.student = opts.make_student ? opts.make_student(system)
                                         : spawn_role_generator(system, cfg.student, "student");
  stopper.actors.push_back(caf::actor_cast<caf::actor>(generators.student));
  if (needs_judge_generator(cfg)) {
    ensure_model(cfg.judge, "judge", seed + 2);
    generators.judge = spawn_role_generator(system, cfg.judge, "judge");
    stopper.actors.push_back(caf::actor_cast<caf::actor>(generators.judge));
  }

  learner_setup ls;
  ls.model = cfg.tutor.model;
  ls.resume = run.resume_dir;
  ls.device = cfg.tutor.device;
  ls.weights = channel;
  ls.options = learner_options_from(cfg, run.total_steps);
  actors.learners.push_back(spawn_learner(system, ls));
  stopper.actors.push_back(caf::actor_cast<caf::actor>(actors.learners.front()));
  return run_steps(system, cfg, resolved_toml, run, actors);
}

int run_steps(caf::actor_system& system, const config::config& cfg,
              const std::string& resolved_toml, prepared_run& run, const job_actors& actors) {
  const auto& t = cfg.train;
  const fs::path run_dir = run.run_dir;
  const fs::path ckpt_dir = run.checkpoint_dir;
  const fs::path metrics_path = run_dir / "metrics.jsonl";
  const fs::path dialogs_path = run_dir / "dialogs.jsonl";
  const auto& problems = run.problems;
  const int64_t per_step = t.problems_per_step;
  const int64_t steps_per_epoch = run.steps_per_epoch;
  const int64_t total_steps = run.total_steps;
  const int64_t start_step = run.start_step;
  const bool resuming = !run.resume_dir.empty();
  const auto seed = static_cast<uint64_t>(t.seed);
  const auto& generators = actors.generators;
  const auto& learner = actors.learners.front(); // the root: reports, checkpoints
  auto setup = make_classroom_setup(cfg);
  auto logger = log::get("trainer");

  // Every line is whole or absent, and a failed write stops the job naming the file.
  files::line_appender metrics(metrics_path);
  files::line_appender dialogs;
  if (cfg.logging.save_dialogs)
    dialogs = files::line_appender(dialogs_path);
  caf::scoped_actor self{system};
  // Nothing waits forever on a peer: a learner or generator that stops answering fails the job.
  const caf::duration timeout{request_timeout_of(cfg)};
  auto fail = [&](const std::string& what, const caf::error& e) {
    throw std::runtime_error(fmt::format("{}: {}", what, system.render(e)));
  };
  // The log file's disk can fill too; spdlog only tells its error handler.
  auto check_log = [&] {
    log::flush();
    if (auto failure = log::write_failure(); !failure.empty())
      throw files::write_error(run_dir / "pedagogy.log", failure);
  };
  if (cfg.inspect.enabled)
    logger->info("live inspection over HTTP ([inspect]) is not built yet; nothing is served");
  logger->info("training: {} problems, {} steps of {} problems x {} samples, run folder {}",
               problems.size(), total_steps, per_step, t.samples_per_problem, run_dir.string());

  // One step's dialogs (run on a thread of its own, so that with max_staleness = 1 the next
  // step's rollouts overlap this step's learning; the dialogs file is only written from there).
  // A stop request (a signal, or an error on the main thread) ends a rollout early.
  std::atomic<bool> abort_rollouts{false};
  auto rollout_opts = rollout_options_from(cfg);
  rollout_opts.stop = [&] {
    return abort_rollouts.load() || signals::stop_requested() != 0;
  };
  struct rollout_out {
    std::vector<dialog_result> results;
    double seconds = 0;
    int64_t epoch = 0;
    bool abandoned = false;
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
    out.results = run_rollout(
      system, setup, generators, std::move(jobs),
      [&](const dialog_result& r) {
        if (dialogs.is_open())
          dialogs.append(classroom::to_json_line(r.record));
      },
      rollout_opts);
    for (const auto& r : out.results)
      out.abandoned = out.abandoned || r.record.status == abandoned_status;
    out.seconds = since(begin);
    out.epoch = epoch;
    return out;
  };
  auto launch = [&](int64_t step) {
    return std::async(std::launch::async, rollout_step, step);
  };

  const auto run_start = clock_type::now();
  std::future<rollout_out> pending;
  // Declared after `pending`, so it runs first on the way out: a rollout still in flight when an
  // error unwinds the loop is stopped instead of waited for.
  struct rollout_aborter {
    std::atomic<bool>& flag;
    ~rollout_aborter() {
      flag = true;
    }
  } aborter{abort_rollouts};

  int64_t completed = start_step; // steps whose update is applied
  int64_t saved = start_step;     // the step of the newest checkpoint
  int64_t optimizer_steps = 0;    // for trainer_state.json
  auto save_checkpoint = [&](int64_t step, int64_t version) {
    const fs::path tmp = checkpoint_tmp_dir(ckpt_dir, step);
    self->request(learner, timeout, save_atom::value, tmp.string())
      .receive([](int64_t) {}, [&](caf::error& e) { fail("saving the checkpoint failed", e); });
    nlohmann::json state = {{"step", step},
                            {"weights_version", version},
                            {"optimizer_steps", optimizer_steps},
                            {"seed", t.seed},
                            {"config", resolved_toml}};
    const auto dir = finish_checkpoint(tmp, state.dump(2) + "\n");
    prune_checkpoints(ckpt_dir, cfg.checkpoint.keep_last);
    saved = step;
    logger->info("checkpoint {}", dir.string());
  };

  // The sync protocol (DESIGN §6): the learner root and every tutor replica are told version v
  // at once, so each can enter the broadcast without waiting for another; each reports v.
  auto sync_weights = [&](int64_t version) {
    auto offered = self->request(learner, timeout, publish_atom::value, version);
    std::vector<decltype(self->request(actors.tutors.front(), timeout, weights_atom::value,
                                       version))>
      taken;
    for (const auto& tutor : actors.tutors)
      taken.push_back(self->request(tutor, timeout, weights_atom::value, version));
    offered.receive([](int64_t) {},
                    [&](caf::error& e) {
                      fail(fmt::format("the learner could not send weights v{}", version), e);
                    });
    for (size_t i = 0; i < taken.size(); ++i)
      taken[i].receive(
        [](int64_t) {},
        [&](caf::error& e) {
          fail(fmt::format("tutor replica {} could not take weights v{}", i, version), e);
        });
  };

  // A resumed tutor starts from the checkpoint's weights, version start_step: offering and taking
  // them makes its tokens carry that version, as they would have in the uninterrupted run.
  if (resuming)
    sync_weights(start_step);
  if (start_step < total_steps)
    pending = launch(start_step);
  for (int64_t step = start_step; step < total_steps; ++step) {
    const auto step_start = clock_type::now();
    auto rolled = pending.get();
    const double rollout_wait_s = since(step_start);
    if (rolled.abandoned)
      break; // stopped mid-rollout: this step is not trained, resume redoes it
    // Off-policy by one step: the next dialogs start now, under the weights of this step, and
    // the tutor takes the new weights mid-rollout (tokens carry their version; the learner
    // compares with the behaviour log-probs recorded at sampling).
    if (t.max_staleness == 1 && step + 1 < total_steps && signals::stop_requested() == 0)
      pending = launch(step + 1);
    auto& results = rolled.results;
    const int64_t epoch = rolled.epoch;
    const double rollout_s = rolled.seconds;
    dialogs.sync();
    // Rewards -> group advantages -> training sequences (failed dialogs sit out).
    auto [batch, stats] = make_step_batch(
      results, {t.samples_per_problem, t.scale_rewards, t.std_eps, cfg.classroom.judge_rules});
    if (batch.sequences.empty()) {
      const auto& first = results.front().record;
      throw std::runtime_error(fmt::format(
        "every dialog of step {} failed; the first ({}) with: {}", step, first.id, first.error));
    }

    // Learning. A NaN/inf loss or gradient never reaches the weights: the learner refuses the
    // pass, and with train.on_non_finite = "stop" the job ends here, with no checkpoint of them.
    const auto learn_start = clock_type::now();
    // Every data-parallel learner gets the whole batch and trains on its share; their reports
    // describe the whole batch and must agree.
    models::learn_report report;
    {
      std::vector<decltype(self->request(learner, timeout, learn_atom::value, batch))> learning;
      for (const auto& l : actors.learners)
        learning.push_back(self->request(l, timeout, learn_atom::value, batch));
      for (size_t i = 0; i < learning.size(); ++i)
        learning[i].receive(
          [&](models::learn_report& r) {
            if (i == 0)
              report = r;
            else if (r.optimizer_steps != report.optimizer_steps ||
                     r.skipped_passes != report.skipped_passes)
              throw std::runtime_error(fmt::format(
                "learner {} took {} optimizer steps, the root {}: the learners diverged", i,
                r.optimizer_steps, report.optimizer_steps));
          },
          [&](caf::error& e) {
            fail(fmt::format("learner {} failed at step {}/{}", i, step + 1, total_steps), e);
          });
    }
    const double learn_s = since(learn_start);
    optimizer_steps = report.optimizer_steps;
    if (report.skipped_passes > 0)
      logger->warn("step {}: {} of {} optimizer passes skipped for a non-finite loss or gradient "
                   "(train.on_non_finite = skip)",
                   step, report.skipped_passes, t.mu);

    // Weight sync: version step + 1 from the learner root to every tutor replica.
    const auto sync_start = clock_type::now();
    const int64_t version = step + 1;
    sync_weights(version);
    const double sync_s = since(sync_start);
    completed = step + 1;

    // Checkpoint.
    const auto ckpt_start = clock_type::now();
    const bool last = step + 1 == total_steps;
    const int64_t every = cfg.checkpoint.every_steps;
    if (last || (every > 0 && (step + 1) % every == 0))
      save_checkpoint(step + 1, version);
    const double ckpt_s = since(ckpt_start);

    // Metrics.
    step_timings time;
    time.rollout_s = rollout_s;
    time.rollout_wait_s = rollout_wait_s;
    time.learn_s = learn_s;
    time.sync_s = sync_s;
    time.checkpoint_s = ckpt_s;
    time.step_s = since(step_start);
    metrics.append(metrics_line({step, epoch, version}, stats, report, time));
    metrics.sync();
    if (cfg.logging.print_every_steps > 0 && (step + 1) % cfg.logging.print_every_steps == 0)
      logger->info("{}", progress_line(step, total_steps, stats, report, time));
    check_log();
    if (signals::stop_requested() != 0)
      break;
    if (t.max_staleness == 0 && step + 1 < total_steps)
      pending = launch(step + 1);
  }
  abort_rollouts = true;
  if (pending.valid())
    pending.wait(); // a rollout of a step that will not be trained

  if (const int signal = signals::stop_requested(); signal != 0) {
    // Stopped by a signal: keep every finished step.
    if (completed > saved)
      save_checkpoint(completed, completed);
    dialogs.close();
    metrics.close();
    if (saved > 0)
      logger->warn("stopped by signal {} after {} of {} steps; checkpoint at step {}; continue "
                   "with --resume",
                   signal, completed, total_steps, saved);
    else
      logger->warn("stopped by signal {} before the first step finished; nothing to resume, "
                   "the same command starts the run again",
                   signal);
    check_log();
    // Everything is on disk; requests still in flight (an HTTP call to a hung server may take
    // up to its timeout) are not waited for.
    signals::exit_now(signals::exit_code_for(signal));
  }
  dialogs.close();
  metrics.close();
  logger->info("done: {} steps in {:.1f} s; metrics in {}", total_steps - start_step,
               since(run_start), metrics_path.string());
  check_log();
  return 0;
}

} // namespace pedagogy::actors
