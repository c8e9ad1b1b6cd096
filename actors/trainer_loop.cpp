// The trainer as an actor (DESIGN §3): the step loop's phases are its states, and every phase
// ends in a message, so the trainer never waits on a peer and starts no thread of its own. It is
// spawned detached, since its phases write files (metrics lines, checkpoints).
//
//            ┌───────────── next step (max_staleness = 0: its rollout starts now) ─────────────┐
//            v                                                                                 │
//   rolling out ──rolled──> learning ──all learners──> syncing ──all tutors──> checkpointing ──┘
//      │   (max_staleness = 1: the next step's rollout starts as learning does)     │
//      └── a signal abandons the rollout ──> stopping <── a signal, checked after each step
//
// With [ped] (Pedagogical RL), the learning phase first runs the mode's ped_teacher work, each
// part ending in a message too: rescue and mix roll out the ped_teacher (a rollout tagged with a
// negative step) and ask the learner root to score it; rounds scores the step's own ped_teacher
// dialogs, lets the ped_teacher's learner take its step and sync its generator, and at a round's
// end rolls out the corpus. The choices themselves are pure functions (rl/ped_step).
//
// Every request has cluster.request_timeout_s; a failed one ends the job with its reason. A stop
// (SIGINT/SIGTERM) lets the step in flight finish, keeps a checkpoint of every finished step,
// and ends with 128 + the signal.
#include "actors/ask_all.hpp"
#include "actors/inspector_actor.hpp"
#include "actors/learner_actor.hpp"
#include "actors/trainer_actor.hpp"
#include "actors/trainer_phases.hpp"
#include "classroom/record.hpp"
#include "inspect/progress.hpp"
#include "rl/ped_step.hpp"
#include "rl/settings.hpp"
#include "rl/step_batch.hpp"
#include "rl/step_metrics.hpp"
#include "run/checkpoints.hpp"
#include "run/dialog_file.hpp"
#include "runtime/faults.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/process_info.hpp"
#include "runtime/seeds.hpp"
#include "runtime/signals.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <utility>

namespace pedagogy::actors {

namespace fs = std::filesystem;

trainer_actor::behavior_type trainer_actor::make_behavior() {
  set_down_handler([this](caf::down_msg& down) {
    // A rollout schedule that stops without its results would leave its step waiting.
    for (const auto& [step, rollout] : rollouts_)
      if (rollout.address() == down.source)
        guard([&] {
          throw std::runtime_error(fmt::format("the rollout of step {} stopped: {}",
                                               step >= 0 ? step + 1 : -step,
                                               system().render(down.reason)));
        });
  });
  guard([this] { start(); });
  return {
    [this](rollout_done_atom, int64_t step, std::vector<dialog_result>& results) {
      guard([&] { on_rolled(step, std::move(results)); });
    },
    [this](tick_atom) { guard([this] { on_tick(); }); },
    [this](learning_atom, int64_t done, int64_t total) {
      micro_done_ = done;
      micro_total_ = total;
    },
  };
}

void trainer_actor::fail(std::exception_ptr error) {
  end_live_line();
  if (!outcome_->error)
    outcome_->error = error;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    report("failed", e.what());
  } catch (...) {
    report("failed", "an unknown error");
  }
  for (const auto& [step, rollout] : rollouts_)
    send_exit(rollout, caf::exit_reason::user_shutdown);
  quit();
}

void trainer_actor::enter(phase p) {
  phase_ = p;
  report();
}

const char* trainer_actor::name_of(phase p) {
  switch (p) {
    case phase::rolling_out:
      return "rolling_out";
    case phase::learning:
      return "learning";
    case phase::syncing:
      return "syncing";
    case phase::checkpointing:
      return "checkpointing";
    case phase::stopping:
      return "stopping";
  }
  return "unknown";
}

void trainer_actor::report(const char* state, const std::string& error) {
  if (!inspector_)
    return;
  trainer_status st;
  st.state = state != nullptr ? state : name_of(phase_);
  st.step = step_ + 1; // 1-based, as every output counts steps
  st.total_steps = run_.total_steps;
  st.completed = completed_;
  st.dialogs_total = t_.problems_per_step * t_.samples_per_problem;
  st.weights_version = completed_;
  st.step_seconds = since(step_start_);
  st.host_memory = process_info::resident_bytes();
  st.last_error = error;
  send(inspector_, std::move(st));
  last_report_ = clock_type::now();
}

void trainer_actor::start() {
  const auto& run = run_;
  dialogs_ = std::make_shared<dialog_file>();
  metrics_ = files::line_appender(run.run_dir / "metrics.jsonl");
  if (cfg_.logging.save_dialogs)
    dialogs_->out = files::line_appender(run.run_dir / "dialogs.jsonl");
  if (cfg_.ped.mode != config::ped_mode::off) {
    // The ped_learner's view of ped_teacher dialogs is rendered here, as the generator would.
    auto setup = std::make_shared<classroom_setup>(*make_classroom_setup(cfg_));
    attach_prompt_renderer(*setup, cfg_.tutor.model);
    setup_ = std::move(setup);
  } else {
    setup_ = make_classroom_setup(cfg_);
  }
  logger_->info("training: {} problems, {} steps of {} problems x {} samples, run folder {}",
                run.problems.size(), run.total_steps, t_.problems_per_step, t_.samples_per_problem,
                run.run_dir.string());
  run_start_ = step_start_ = last_progress_ = clock_type::now();
  step_ = completed_ = saved_ = run.start_step;
  delayed_send(this, std::chrono::milliseconds(200), tick_atom::value);
  auto first = [this] {
    if (step_ >= run_.total_steps)
      return finish_job();
    step_start_ = last_progress_ = clock_type::now();
    start_rollout(step_);
    enter(phase::rolling_out);
  };
  // A resumed tutor starts from the checkpoint's weights, version start_step: offering and
  // taking them makes its tokens carry that version, as in the uninterrupted run.
  if (!run.resume_dir.empty())
    sync(run.start_step, [this, first] {
      if (actors_.ped_teacher)
        teacher_sync(run_.start_step, first);
      else
        first();
    });
  else
    first();
}

void trainer_actor::start_rollout(int64_t step) {
  const int64_t epoch = step / run_.steps_per_epoch;
  const auto order = classroom::epoch_order(static_cast<int64_t>(run_.problems.size()), epoch,
                                            t_.seed, cfg_.data.shuffle);
  const auto offset = static_cast<size_t>((step % run_.steps_per_epoch) * t_.problems_per_step);
  std::vector<int64_t> picked(order.begin() + static_cast<std::ptrdiff_t>(offset),
                              order.begin() + static_cast<std::ptrdiff_t>(offset) +
                                t_.problems_per_step);
  auto jobs =
    make_jobs(step, run_.problems, picked, t_.samples_per_problem, static_cast<uint64_t>(t_.seed));
  // rounds: the step's dialogs are the ped_teacher's.
  const bool rounds = cfg_.ped.mode == config::ped_mode::rounds;
  if (rounds)
    for (auto& job : jobs)
      job.privileged = true;
  spawn_schedule(std::move(jobs), step, rounds ? teacher_generators() : actors_.generators);
}

role_generators trainer_actor::teacher_generators() const {
  auto out = actors_.generators;
  out.tutor = actors_.ped_teacher_generator;
  return out;
}

void trainer_actor::spawn_schedule(std::vector<dialog_job> jobs, int64_t tag, role_generators to) {
  // Conversations tell the inspector about every turn.
  to.inspector = caf::actor_cast<caf::actor>(inspector_);
  auto options = rollout_options_from(cfg_);
  auto file = dialogs_;
  auto inspector = inspector_;
  // A signal, or a failed write of dialogs.jsonl (raised by learn()), ends the rollout early.
  options.stop = [file] {
    return signals::stop_requested() != 0 || file->failed();
  };
  auto rollout = spawn_rollout(
    system(), setup_, to, std::move(jobs),
    [file, inspector, tag](const dialog_result& r) {
      file->count(tag);
      file->append(classroom::to_json_line(r.record));
      if (inspector)
        caf::anon_send(inspector, r.record);
    },
    std::move(options), caf::actor_cast<caf::actor>(this), tag);
  monitor(rollout);
  rollouts_.emplace(tag, rollout);
  rollout_started_[tag] = clock_type::now();
}

void trainer_actor::on_rolled(int64_t step, std::vector<dialog_result> results) {
  rollouts_.erase(step);
  if (step < 0)
    return on_teacher_rolled(step, std::move(results));
  rollout_out out;
  out.seconds = since(rollout_started_[step]);
  rollout_started_.erase(step);
  out.epoch = step / run_.steps_per_epoch;
  for (const auto& r : results)
    out.abandoned = out.abandoned || r.record.status == abandoned_status;
  out.results = std::move(results);
  ready_[step] = std::move(out);
  if (phase_ == phase::stopping)
    return stop_when_idle();
  if (phase_ == phase::rolling_out && step == step_)
    learn();
}

void trainer_actor::learn() {
  auto rolled = std::move(ready_[step_]);
  ready_.erase(step_);
  rollout_wait_s_ = since(step_start_);
  dialogs_->sync(); // raises a failed write of this step's dialogs
  if (rolled.abandoned)
    return stop(); // stopped mid-rollout: this step is not trained, resume redoes it
  // Off-policy by one step: the next dialogs start now, under the weights of this step, and
  // the tutor takes the new weights mid-rollout (tokens carry their version; the learner
  // compares with the behaviour log-probs recorded at sampling).
  if (t_.max_staleness == 1 && step_ + 1 < run_.total_steps && signals::stop_requested() == 0)
    start_rollout(step_ + 1);
  epoch_ = rolled.epoch;
  rollout_s_ = rolled.seconds;
  // Rewards -> group advantages -> training sequences (failed dialogs sit out).
  auto made = make_step_batch(rolled.results, {t_.samples_per_problem, t_.scale_rewards, t_.std_eps,
                                               cfg_.classroom.judge_rules});
  stats_ = std::move(made.stats);
  if (made.batch.sequences.empty()) {
    const auto& first = rolled.results.front().record;
    throw std::runtime_error(fmt::format("every dialog of step {} failed; the first ({}) with: {}",
                                         step_ + 1, first.id, first.error));
  }
  if (faults::fault_injected("non_finite_advantage"))
    made.batch.sequences.front().advantage = std::numeric_limits<double>::quiet_NaN();
  enter(phase::learning);
  learn_start_ = clock_type::now();
  micro_done_ = micro_total_ = 0;
  ped_ = {};
  switch (cfg_.ped.mode) {
    case config::ped_mode::off:
      return send_learn(std::move(made.batch));
    case config::ped_mode::rescue:
      return rescue(rolled.results, std::move(made.batch));
    case config::ped_mode::mix:
      return mix(rolled.results, std::move(made.batch));
    case config::ped_mode::rounds:
      return teach(std::move(rolled.results));
  }
}

void trainer_actor::send_learn(rollout_batch batch) {
  ask_all<models::learn_report>(
    actors_.learners.size(),
    [&](size_t i) { return request(actors_.learners[i], timeout_, learn_atom::value, batch); },
    [this](size_t i, models::learn_report& r) {
      if (i == 0)
        report_ = r;
      else
        reports_[i] = r;
    },
    [this] { guard([this] { on_learned(); }); },
    [this](size_t i, caf::error& e) {
      guard([&] {
        fail(fmt::format("learner {} failed at step {}/{}", i, step_ + 1, run_.total_steps), e);
      });
    });
}

void trainer_actor::on_learned() {
  for (const auto& [i, r] : reports_)
    if (r.optimizer_steps != report_.optimizer_steps || r.skipped_passes != report_.skipped_passes)
      throw std::runtime_error(
        fmt::format("learner {} took {} optimizer steps, the root {}: the learners diverged", i,
                    r.optimizer_steps, report_.optimizer_steps));
  reports_.clear();
  learn_s_ = since(learn_start_);
  optimizer_steps_ = report_.optimizer_steps;
  end_live_line();
  if (report_.skipped_passes > 0)
    logger_->warn("step {}: {} of {} optimizer passes skipped for a non-finite loss or gradient "
                  "(train.on_non_finite = skip)",
                  step_ + 1, report_.skipped_passes, t_.mu);
  enter(phase::syncing);
  sync_start_ = clock_type::now();
  sync(step_ + 1, [this] {
    sync_s_ = since(sync_start_);
    completed_ = step_ + 1;
    checkpoint();
  });
}

void trainer_actor::sync(int64_t version, std::function<void()> then) {
  ask_all<int64_t>(
    1 + actors_.tutors.size(),
    [&](size_t i) {
      return i == 0 ? request(actors_.learners.front(), timeout_, publish_atom::value, version)
                    : request(actors_.tutors[i - 1], timeout_, weights_atom::value, version);
    },
    [](size_t, int64_t) {}, [this, then] { guard(then); },
    [this, version](size_t i, caf::error& e) {
      guard([&] {
        fail(i == 0 ? fmt::format("the learner could not send weights v{}", version)
                    : fmt::format("tutor replica {} could not take weights v{}", i - 1, version),
             e);
      });
    });
}

void trainer_actor::end_step() {
  step_timings time;
  time.rollout_s = rollout_s_;
  time.rollout_wait_s = rollout_wait_s_;
  time.learn_s = learn_s_;
  time.sync_s = sync_s_;
  time.checkpoint_s = since(checkpoint_start_);
  time.step_s = since(step_start_);
  time.elapsed_s = since(run_start_);
  // rounds: the step's dialogs are the ped_teacher's own, counted once; a round's end adds its
  // corpus pass.
  const bool rounds = cfg_.ped.mode == config::ped_mode::rounds;
  ped_.rollouts = stats_.dialogs + (!rounds || corpus_sampled_ ? ped_.teacher_dialogs : 0);
  corpus_sampled_ = false;
  const ped_step_metrics ped{ped_, teacher_report_};
  const auto line = metrics_line({step_ + 1, epoch_ + 1, step_ + 1}, stats_, report_, time,
                                 cfg_.ped.mode == config::ped_mode::off ? nullptr : &ped);
  metrics_.append(line);
  metrics_.sync();
  if (inspector_)
    send(inspector_, metrics_atom::value, line);
  if (cfg_.logging.print_every_steps > 0 && (step_ + 1) % cfg_.logging.print_every_steps == 0) {
    // The ETA from this process's pace: a resumed run's earlier steps took no time here.
    const auto done_here = static_cast<double>(step_ + 1 - run_.start_step);
    const run_position at{step_ + 1, run_.total_steps, time.elapsed_s,
                          time.elapsed_s / done_here *
                            static_cast<double>(run_.total_steps - step_ - 1)};
    end_live_line();
    logger_->info("{}", step_line(at, stats_, report_, time));
  }
  check_log();
  if (step_ + 1 == run_.total_steps)
    return finish_job(); // a signal now finds the run complete
  if (signals::stop_requested() != 0)
    return stop();
  ++step_;
  step_start_ = last_progress_ = clock_type::now();
  enter(phase::rolling_out);
  if (t_.max_staleness == 0)
    start_rollout(step_);
  else if (ready_.count(step_) > 0)
    learn();
}

void trainer_actor::on_tick() {
  // A signal abandons a rollout in flight (its schedule polls the same flag); a step that is
  // learning or syncing finishes first (end_step looks again).
  delayed_send(this, std::chrono::milliseconds(200), tick_atom::value);
  if (clock_type::now() - last_report_ >= std::chrono::milliseconds(cfg_.inspect.heartbeat_ms))
    report();
  show_progress();
}

std::string trainer_actor::progress_text() {
  const int64_t total = t_.problems_per_step * t_.samples_per_problem;
  std::string doing;
  switch (phase_) {
    case phase::rolling_out:
      doing = fmt::format("dialogs {}/{}", dialogs_->finished_of(step_), total);
      break;
    case phase::learning:
      doing = micro_total_ > 0
                ? fmt::format("learning, micro-batch {}/{}", micro_done_, micro_total_)
                : std::string("learning");
      if (t_.max_staleness == 1 && step_ + 1 < run_.total_steps)
        doing +=
          fmt::format(" | next step's dialogs {}/{}", dialogs_->finished_of(step_ + 1), total);
      break;
    case phase::syncing:
      doing = fmt::format("sending weights v{}", step_ + 1);
      break;
    case phase::checkpointing:
      doing = "saving a checkpoint";
      break;
    case phase::stopping:
      doing = "stopping";
      break;
  }
  return fmt::format("step {}/{} | {} | {} in this step, {} in all", step_ + 1, run_.total_steps,
                     doing, duration_text(since(step_start_)), duration_text(since(run_start_)));
}

void trainer_actor::show_progress() {
  if (cfg_.logging.print_every_steps == 0 || phase_ == phase::stopping)
    return;
  // The log file (and a log that is not a terminal) gets a line every logging.progress_s.
  if (since(last_progress_) >= cfg_.logging.progress_s) {
    last_progress_ = clock_type::now();
    logger_->info("{}", progress_text());
  }
  if (live_terminal_)
    log::show_live_line(progress_text());
}

void trainer_actor::end_live_line() {
  log::clear_live_line();
}

int run_steps(caf::actor_system& system, const config::config& cfg,
              const std::string& resolved_toml, prepared_run& run, const job_actors& actors) {
  auto outcome = std::make_shared<trainer_outcome>();
  // Live inspection starts first: a bad inspect.host, port or token stops the run before it does
  // anything.
  std::unique_ptr<inspection_host> inspection;
  if (cfg.inspect.enabled)
    inspection = std::make_unique<inspection_host>(system, cfg.inspect, run.run_dir.string(),
                                                   actors.inspected);
  trainer_setup setup{&cfg,    &resolved_toml,
                      &run,    &actors,
                      outcome, inspection ? inspection->inspector() : inspector_actor{}};
  caf::scoped_actor self{system};
  // Detached: its phases write files (metrics, checkpoints) and must not hold a scheduler thread.
  auto trainer = system.spawn<trainer_actor, caf::detached>(setup);
  self->monitor(trainer);
  // The trainer bounds everything it waits for; this thread only waits for it to end.
  for (bool ended = false; !ended;)
    self->receive([&](caf::down_msg&) { ended = true; },
                  caf::after(std::chrono::seconds(1)) >> [] {});
  if (inspection)
    inspection->linger();
  if (outcome->error)
    std::rethrow_exception(outcome->error);
  return outcome->code;
}

} // namespace pedagogy::actors
