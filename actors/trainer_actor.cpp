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
// end rolls out the corpus. The choices themselves are pure functions (actors/ped_step).
//
// Every request has cluster.request_timeout_s; a failed one ends the job with its reason. A stop
// (SIGINT/SIGTERM) lets the step in flight finish, keeps a checkpoint of every finished step,
// and ends with 128 + the signal.
#include "actors/checkpoints.hpp"
#include "actors/inspector_actor.hpp"
#include "actors/learner_actor.hpp"
#include "actors/ped_step.hpp"
#include "actors/setup.hpp"
#include "actors/step_batch.hpp"
#include "actors/step_metrics.hpp"
#include "actors/training_run.hpp"
#include "classroom/record.hpp"
#include "runtime/faults.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/process_info.hpp"
#include "runtime/progress.hpp"
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

// dialogs.jsonl, appended to by the rollouts' schedules (on their threads) and synced and closed
// by the trainer. A failed write is kept and raised by the trainer. It also counts the finished
// dialogs of each rollout, for the progress line.
struct dialog_file {
  std::mutex mutex;
  files::line_appender out;
  std::exception_ptr failure;
  std::map<int64_t, int64_t> finished; // by rollout tag

  void count(int64_t tag) {
    std::lock_guard guard{mutex};
    ++finished[tag];
  }
  int64_t finished_of(int64_t tag) {
    std::lock_guard guard{mutex};
    const auto it = finished.find(tag);
    return it == finished.end() ? 0 : it->second;
  }

  void append(const std::string& line) {
    std::lock_guard guard{mutex};
    if (failure || !out.is_open())
      return;
    try {
      out.append(line);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  bool failed() {
    std::lock_guard guard{mutex};
    return failure != nullptr;
  }
  void sync() {
    std::lock_guard guard{mutex};
    if (failure)
      std::rethrow_exception(failure);
    out.sync();
  }
  void close() {
    std::lock_guard guard{mutex};
    if (failure)
      std::rethrow_exception(failure);
    out.close();
  }
};

// How the job ended, for the thread that waits for the trainer.
struct trainer_outcome {
  int code = 0;
  bool signal = false;      // stopped by a signal: exit at once with `code`
  std::exception_ptr error; // the job failed
};

struct rollout_out {
  std::vector<dialog_result> results;
  double seconds = 0;
  int64_t epoch = 0;
  bool abandoned = false;
};

struct trainer_setup {
  const config::config* cfg = nullptr;
  const std::string* resolved_toml = nullptr;
  prepared_run* run = nullptr;
  const job_actors* actors = nullptr;
  std::shared_ptr<trainer_outcome> outcome;
  inspector_actor inspector; // unset = no live inspection
};

class trainer_actor : public caf::event_based_actor {
public:
  trainer_actor(caf::actor_config& config, trainer_setup setup)
    : caf::event_based_actor(config), cfg_(*setup.cfg), t_(setup.cfg->train),
      resolved_toml_(*setup.resolved_toml), run_(*setup.run), actors_(*setup.actors),
      outcome_(std::move(setup.outcome)), inspector_(std::move(setup.inspector)),
      timeout_(request_timeout_of(*setup.cfg)), logger_(log::get("trainer")) {}

  const char* name() const override {
    return "trainer";
  }

  caf::behavior make_behavior() override {
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

private:
  enum class phase { rolling_out, learning, syncing, checkpointing, stopping };

  // Runs a phase's work; an exception ends the job with it.
  template <class F>
  void guard(F&& f) {
    try {
      f();
    } catch (...) {
      fail(std::current_exception());
    }
  }

  void fail(std::exception_ptr error) {
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

  [[noreturn]] void fail(const std::string& what, const caf::error& e) {
    throw std::runtime_error(fmt::format("{}: {}", what, system().render(e)));
  }

  // ---- live inspection
  // ---------------------------------------------------------------------------

  void enter(phase p) {
    phase_ = p;
    report();
  }

  static const char* name_of(phase p) {
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

  // Tells the inspector where the run stands; `state` overrides the phase at the end.
  void report(const char* state = nullptr, const std::string& error = {}) {
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

  void start() {
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
    if (inspector_) {
      // Conversations tell the inspector about every turn.
      auto setup = std::make_shared<classroom_setup>(*setup_);
      setup->inspector = caf::actor_cast<caf::actor>(inspector_);
      setup_ = std::move(setup);
    }
    logger_->info("training: {} problems, {} steps of {} problems x {} samples, run folder {}",
                  run.problems.size(), run.total_steps, t_.problems_per_step,
                  t_.samples_per_problem, run.run_dir.string());
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

  // ---- rolling out -----------------------------------------------------------------------------

  void start_rollout(int64_t step) {
    const int64_t epoch = step / run_.steps_per_epoch;
    const auto order =
      epoch_order(static_cast<int64_t>(run_.problems.size()), epoch, t_.seed, cfg_.data.shuffle);
    const auto offset = static_cast<size_t>((step % run_.steps_per_epoch) * t_.problems_per_step);
    std::vector<int64_t> picked(order.begin() + static_cast<std::ptrdiff_t>(offset),
                                order.begin() + static_cast<std::ptrdiff_t>(offset) +
                                  t_.problems_per_step);
    auto jobs = make_jobs(step, run_.problems, picked, t_.samples_per_problem,
                          static_cast<uint64_t>(t_.seed));
    // rounds: the step's dialogs are the ped_teacher's.
    const bool rounds = cfg_.ped.mode == config::ped_mode::rounds;
    if (rounds)
      for (auto& job : jobs)
        job.privileged = true;
    spawn_schedule(std::move(jobs), step, rounds ? teacher_generators() : actors_.generators);
  }

  // The classroom with the ped_teacher's generator in the trained policy's seat.
  role_generators teacher_generators() const {
    auto out = actors_.generators;
    out.tutor = actors_.ped_teacher_generator;
    return out;
  }

  // A rollout schedule for `jobs`; its results come back tagged `tag` (a step, or a negative tag
  // for a ped_teacher rollout inside a step).
  void spawn_schedule(std::vector<dialog_job> jobs, int64_t tag, const role_generators& to) {
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

  void on_rolled(int64_t step, std::vector<dialog_result> results) {
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

  // ---- learning
  // ----------------------------------------------------------------------------------

  void learn() {
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
    auto made = make_step_batch(rolled.results, {t_.samples_per_problem, t_.scale_rewards,
                                                 t_.std_eps, cfg_.classroom.judge_rules});
    stats_ = std::move(made.stats);
    if (made.batch.sequences.empty()) {
      const auto& first = rolled.results.front().record;
      throw std::runtime_error(
        fmt::format("every dialog of step {} failed; the first ({}) with: {}", step_ + 1, first.id,
                    first.error));
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

  // Every data-parallel learner gets the whole batch and trains on its share; their reports
  // describe the whole batch and must agree. A NaN/inf loss or gradient never reaches the
  // weights: the learner refuses the pass, and with train.on_non_finite = "stop" the job ends.
  void send_learn(rollout_batch batch) {
    auto waiting = std::make_shared<size_t>(actors_.learners.size());
    for (size_t i = 0; i < actors_.learners.size(); ++i)
      request(actors_.learners[i], timeout_, learn_atom::value, batch)
        .then(
          [this, i, waiting](models::learn_report& r) {
            guard([&] {
              if (i == 0)
                report_ = r;
              else
                reports_[i] = r;
              if (--*waiting == 0)
                on_learned();
            });
          },
          [this, i](caf::error& e) {
            guard([&] {
              fail(fmt::format("learner {} failed at step {}/{}", i, step_ + 1, run_.total_steps),
                   e);
            });
          });
  }

  void on_learned() {
    for (const auto& [i, r] : reports_)
      if (r.optimizer_steps != report_.optimizer_steps ||
          r.skipped_passes != report_.skipped_passes)
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

  // ---- Pedagogical RL (../shared/reference/privileged_pedagogical_rl.md §10.4) ------------------

  // rescue: GRPO as usual; the groups in which every sample failed are handed to the ped_teacher,
  // and its kept trajectories join the batch with imitation weight alpha.
  void rescue(const std::vector<dialog_result>& results, rollout_batch batch) {
    auto failed = failed_problems(results, t_.samples_per_problem);
    ped_.rescued_groups = static_cast<int64_t>(failed.size());
    if (failed.empty())
      return send_learn(std::move(batch));
    corpus_from(std::move(failed), cfg_.ped.alpha,
                [this, batch = std::move(batch)](std::vector<models::training_sequence> corpus) {
                  auto with = batch;
                  for (auto& s : corpus)
                    with.sequences.push_back(std::move(s));
                  send_learn(std::move(with));
                });
  }

  // mix: GRPO plus alpha x imitation of a corpus buffer, refreshed from the ped_teacher on this
  // step's problems every ped.refresh_steps steps (and whenever it is empty, e.g. after a resume).
  void mix(const std::vector<dialog_result>& results, rollout_batch batch) {
    auto with_buffer = [this](rollout_batch b) {
      for (const auto& s : buffer_)
        b.sequences.push_back(s);
      send_learn(std::move(b));
    };
    if (!buffer_.empty() && step_ % cfg_.ped.refresh_steps != 0)
      return with_buffer(std::move(batch));
    std::vector<int64_t> problems;
    for (const auto& r : results)
      if (problems.empty() || problems.back() != r.record.problem_index)
        problems.push_back(r.record.problem_index);
    corpus_from(
      std::move(problems), cfg_.ped.alpha,
      [this, with_buffer, batch = std::move(batch)](std::vector<models::training_sequence> corpus) {
        buffer_ = std::move(corpus);
        with_buffer(batch);
      });
  }

  // rounds: this step's dialogs are the ped_teacher's. They are scored under the ped_learner
  // (frozen for the round) and the ped_teacher takes a GRPO step on R x G. At the round's end the
  // trained ped_teacher samples ped.teacher_samples fresh dialogs of every problem of the round,
  // and the ped_learner imitates the ones kept.
  void teach(std::vector<dialog_result> results) {
    auto shared = std::make_shared<std::vector<dialog_result>>(std::move(results));
    score(*shared, [this, shared](std::vector<models::ped_score> scores) {
      const auto rewards = ped_rewards(*shared, scores, cfg_.ped);
      describe_teacher(*shared, scores, rewards, cfg_.ped, ped_);
      auto batch =
        teacher_batch(*shared, rewards, t_.samples_per_problem, t_.scale_rewards, t_.std_eps);
      if (batch.sequences.empty())
        throw std::runtime_error(
          fmt::format("every ped_teacher dialog of step {} failed; the first with: {}", step_ + 1,
                      shared->front().record.error));
      for (const auto& r : *shared)
        if (std::find(round_problems_.begin(), round_problems_.end(), r.record.problem_index) ==
            round_problems_.end())
          round_problems_.push_back(r.record.problem_index);
      const auto started = clock_type::now();
      request(actors_.ped_teacher, timeout_, learn_atom::value, std::move(batch))
        .then(
          [this, started](models::learn_report& r) {
            guard([&] {
              ped_.teacher_learn_s = since(started);
              teacher_report_ = r;
              teacher_sync(step_ + 1, [this] { end_teacher_step(); });
            });
          },
          [this](caf::error& e) {
            guard([&] {
              fail(fmt::format("the ped_teacher failed to learn at step {}", step_ + 1), e);
            });
          });
    });
  }

  void end_teacher_step() {
    const bool round_end =
      (step_ + 1) % cfg_.ped.teacher_steps == 0 || step_ + 1 == run_.total_steps;
    if (!round_end) {
      // The ped_learner does not move within a round.
      report_ = {};
      report_.optimizer_steps = optimizer_steps_;
      return on_learned();
    }
    // The step's figures from here on describe this corpus pass.
    corpus_sampled_ = true;
    corpus_from(std::exchange(round_problems_, {}), 1.0,
                [this](std::vector<models::training_sequence> corpus) {
                  if (corpus.empty()) {
                    end_live_line();
                    logger_->warn("step {}: the ped_teacher's corpus kept no trajectory; the "
                                  "ped_learner is unchanged",
                                  step_ + 1);
                    report_ = {};
                    report_.optimizer_steps = optimizer_steps_;
                    return on_learned();
                  }
                  send_learn({std::move(corpus)});
                });
  }

  // rounds: the ped_teacher's learner and generator, as sync() does for the tutor's.
  void teacher_sync(int64_t version, std::function<void()> then) {
    auto waiting = std::make_shared<size_t>(2);
    auto done = [this, waiting, then](int64_t) {
      guard([&] {
        if (--*waiting == 0)
          then();
      });
    };
    request(actors_.ped_teacher, timeout_, publish_atom::value, version)
      .then(done, [this, version](caf::error& e) {
        guard([&] { fail(fmt::format("the ped_teacher could not send weights v{}", version), e); });
      });
    request(actors_.ped_teacher_generator, timeout_, weights_atom::value, version)
      .then(done, [this, version](caf::error& e) {
        guard([&] {
          fail(fmt::format("the ped_teacher's generator could not take weights v{}", version), e);
        });
      });
  }

  // The ped_teacher samples ped.teacher_samples dialogs of each of `problems`; they are scored
  // under the ped_learner and the kept ones come back as imitation sequences of weight `weight`.
  void corpus_from(std::vector<int64_t> problems, double weight,
                   std::function<void(std::vector<models::training_sequence>)> then) {
    auto jobs = make_jobs(step_, run_.problems, problems, cfg_.ped.teacher_samples,
                          derive_seed(static_cast<uint64_t>(t_.seed), 0x7065645f74656163ull));
    for (auto& job : jobs)
      job.privileged = true;
    teacher_then_ = [this, weight, then](std::vector<dialog_result> results) {
      auto shared = std::make_shared<std::vector<dialog_result>>(std::move(results));
      score(*shared, [this, shared, weight, then](std::vector<models::ped_score> scores) {
        describe_teacher(*shared, scores, ped_rewards(*shared, scores, cfg_.ped), cfg_.ped, ped_);
        then(select_corpus(*shared, scores, cfg_.ped, weight, ped_));
      });
    };
    spawn_schedule(std::move(jobs), -(step_ + 1), teacher_generators());
  }

  void on_teacher_rolled(int64_t tag, std::vector<dialog_result> results) {
    ped_.teacher_rollout_s = since(rollout_started_[tag]);
    rollout_started_.erase(tag);
    if (phase_ == phase::stopping)
      return stop_when_idle();
    for (const auto& r : results)
      if (r.record.status == abandoned_status)
        return stop(); // a signal: this step is not trained, resume redoes it
    dialogs_->sync();
    auto then = std::move(teacher_then_);
    teacher_then_ = nullptr;
    then(std::move(results));
  }

  // The ped_learner's learnability of each trajectory (its own view, its current weights).
  void score(const std::vector<dialog_result>& results,
             std::function<void(std::vector<models::ped_score>)> then) {
    const auto started = clock_type::now();
    request(actors_.learners.front(), timeout_, score_atom::value,
            rollout_batch{learner_views(results)})
      .then(
        [this, started, then](std::vector<models::ped_score>& scores) {
          guard([&] {
            ped_.score_s += since(started);
            then(std::move(scores));
          });
        },
        [this](caf::error& e) {
          guard([&] {
            fail(fmt::format("scoring the ped_teacher's dialogs failed at step {}", step_ + 1), e);
          });
        });
  }

  // ---- syncing: version v from the learner root to every tutor replica
  // ---------------------------

  // The sync protocol (DESIGN §6): the learner root and every tutor replica are told version v
  // at once, so each can enter the broadcast without waiting for another; each reports v.
  void sync(int64_t version, std::function<void()> then) {
    auto waiting = std::make_shared<size_t>(1 + actors_.tutors.size());
    auto done = [this, waiting, then](int64_t) {
      guard([&] {
        if (--*waiting == 0)
          then();
      });
    };
    request(actors_.learners.front(), timeout_, publish_atom::value, version)
      .then(done, [this, version](caf::error& e) {
        guard([&] { fail(fmt::format("the learner could not send weights v{}", version), e); });
      });
    for (size_t i = 0; i < actors_.tutors.size(); ++i)
      request(actors_.tutors[i], timeout_, weights_atom::value, version)
        .then(done, [this, i, version](caf::error& e) {
          guard([&] {
            fail(fmt::format("tutor replica {} could not take weights v{}", i, version), e);
          });
        });
  }

  // ---- checkpointing
  // -----------------------------------------------------------------------------

  void save(int64_t step, std::function<void()> then) {
    const fs::path tmp = begin_checkpoint(run_.checkpoint_dir, step);
    if (actors_.ped_teacher) {
      // rounds: the ped_teacher's weights and optimizer go into the same checkpoint, first.
      request(actors_.ped_teacher, timeout_, save_atom::value, (tmp / "ped_teacher").string())
        .then([this, step, then](int64_t) { guard([&] { save_learner(step, then); }); },
              [this](caf::error& e) {
                guard([&] { fail("saving the ped_teacher's checkpoint failed", e); });
              });
      return;
    }
    save_learner(step, std::move(then));
  }

  // The first learner writes the model and its optimizer state; with ZeRO-1 every other learner
  // writes its shard of the optimizer state into the same folder, and the checkpoint is finished
  // once all of them have.
  void save_learner(int64_t step, std::function<void()> then) {
    const fs::path tmp = checkpoint_tmp_dir(run_.checkpoint_dir, step);
    const size_t writers =
      t_.shard_optimizer && actors_.learners.size() > 1 ? actors_.learners.size() : 1;
    auto waiting = std::make_shared<size_t>(writers);
    for (size_t i = 0; i < writers; ++i)
      request(actors_.learners[i], timeout_, save_atom::value, tmp.string())
        .then(
          [this, tmp, step, then, waiting](int64_t) {
            if (--*waiting == 0)
              finish_save(tmp, step, then);
          },
          [this, i](caf::error& e) {
            guard([&] { fail(fmt::format("saving the checkpoint failed (learner {})", i), e); });
          });
  }

  void finish_save(const fs::path& tmp, int64_t step, const std::function<void()>& then) {
    guard([&] {
      nlohmann::json state = {{"step", step},
                              {"weights_version", step},
                              {"optimizer_steps", optimizer_steps_},
                              {"seed", t_.seed},
                              {"config", resolved_toml_}};
      const auto dir = finish_checkpoint(tmp, state.dump(2) + "\n");
      prune_checkpoints(run_.checkpoint_dir, cfg_.checkpoint.keep_last,
                        {cfg_.tutor.model, cfg_.student.model, cfg_.judge.model});
      saved_ = step;
      end_live_line();
      logger_->info("checkpoint {}", dir.string());
      then();
    });
  }

  void checkpoint() {
    enter(phase::checkpointing);
    checkpoint_start_ = clock_type::now();
    const bool last = step_ + 1 == run_.total_steps;
    const int64_t every = cfg_.checkpoint.every_steps;
    if (last || (every > 0 && (step_ + 1) % every == 0))
      save(step_ + 1, [this] { end_step(); });
    else
      end_step();
  }

  // ---- the end of a step
  // -------------------------------------------------------------------------

  void end_step() {
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

  void on_tick() {
    // A signal abandons a rollout in flight (its schedule polls the same flag); a step that is
    // learning or syncing finishes first (end_step looks again).
    delayed_send(this, std::chrono::milliseconds(200), tick_atom::value);
    if (clock_type::now() - last_report_ >= std::chrono::milliseconds(cfg_.inspect.heartbeat_ms))
      report();
    show_progress();
  }

  // ---- progress within a step: a live line on a terminal, else a log line every
  // logging.progress_s seconds --------------------------------------------------------------------

  std::string progress_text() {
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

  void show_progress() {
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

  // Clears the live line before the job's last words (log lines clear it themselves).
  void end_live_line() {
    log::clear_live_line();
  }

  // ---- stopping (a signal)
  // -----------------------------------------------------------------------

  void stop() {
    enter(phase::stopping);
    for (const auto& [step, rollout] : rollouts_)
      send_exit(rollout, caf::exit_reason::user_shutdown);
    stop_when_idle();
  }

  // Once no rollout is running: keep every finished step, then leave.
  void stop_when_idle() {
    if (!rollouts_.empty() || stopping_started_)
      return;
    stopping_started_ = true;
    auto leave = [this] {
      const int signal = signals::stop_requested();
      end_live_line();
      dialogs_->close();
      metrics_.close();
      if (saved_ > 0)
        logger_->warn("stopped by signal {} after {} of {} steps; checkpoint at step {}; "
                      "continue with --resume",
                      signal, completed_, run_.total_steps, saved_);
      else
        logger_->warn("stopped by signal {} before the first step finished; nothing to resume, "
                      "the same command starts the run again",
                      signal);
      check_log();
      outcome_->signal = true;
      outcome_->code = signals::exit_code_for(signal);
      report("stopped");
      quit();
    };
    if (completed_ > saved_)
      save(completed_, leave);
    else
      leave();
  }

  void finish_job() {
    dialogs_->close();
    metrics_.close();
    end_live_line();
    logger_->info("done: {} steps in {:.1f} s; metrics in {}", run_.total_steps - run_.start_step,
                  since(run_start_), (run_.run_dir / "metrics.jsonl").string());
    check_log();
    outcome_->code = 0;
    report("finished");
    quit();
  }

  // The log file's disk can fill too; spdlog only tells its error handler.
  void check_log() {
    log::flush();
    if (auto failure = log::write_failure(); !failure.empty())
      throw files::write_error(run_.run_dir / "pedagogy.log", failure);
  }

  const config::config& cfg_;
  const config::train_config& t_;
  const std::string& resolved_toml_;
  prepared_run& run_;
  const job_actors& actors_;
  std::shared_ptr<trainer_outcome> outcome_;
  inspector_actor inspector_;
  clock_type::time_point last_report_;
  caf::duration timeout_;
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<const classroom_setup> setup_;
  std::shared_ptr<dialog_file> dialogs_;
  files::line_appender metrics_;

  phase phase_ = phase::rolling_out;
  bool stopping_started_ = false;
  int64_t step_ = 0;      // the step being worked on
  int64_t completed_ = 0; // steps whose update is applied
  int64_t saved_ = 0;     // the step of the newest checkpoint
  int64_t optimizer_steps_ = 0;
  int64_t epoch_ = 0;
  std::map<int64_t, caf::actor> rollouts_; // running rollout schedules, by step
  std::map<int64_t, clock_type::time_point> rollout_started_;
  std::map<int64_t, rollout_out> ready_; // finished rollouts not yet learned from
  step_stats stats_;
  models::learn_report report_;
  // Pedagogical RL: this step's figures, the ped_teacher's last update (rounds), what a ped_teacher
  // rollout hands its result to, mix's corpus buffer, and the round's problems.
  ped_stats ped_;
  models::learn_report teacher_report_;
  std::function<void(std::vector<dialog_result>)> teacher_then_;
  std::vector<models::training_sequence> buffer_;
  std::vector<int64_t> round_problems_; // rounds: the problems of the round so far
  bool corpus_sampled_ = false;         // rounds: this step ended a round with a corpus pass
  std::map<size_t, models::learn_report> reports_; // the other learners'
  clock_type::time_point run_start_, step_start_, learn_start_, sync_start_, checkpoint_start_;
  // Progress within a step: the learner's micro-batches, and where the progress goes.
  int64_t micro_done_ = 0, micro_total_ = 0;
  bool live_terminal_ = isatty(STDERR_FILENO) != 0;
  clock_type::time_point last_progress_;
  double rollout_s_ = 0, rollout_wait_s_ = 0, learn_s_ = 0, sync_s_ = 0;
};

} // namespace

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
