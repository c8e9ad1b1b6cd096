// The trainer actor's class (see trainer_actor.hpp): its phases and its state. The core loop's
// phases are defined in trainer_loop.cpp, Pedagogical RL's in trainer_ped.cpp, checkpoints and
// stopping in trainer_save.cpp.
#pragma once

#include "actors/inspector_actor.hpp"
#include "actors/learner_actor.hpp"
#include "actors/trainer_actor.hpp"
#include "rl/ped_step.hpp"
#include "rl/settings.hpp"
#include "rl/step_batch.hpp"
#include "run/dialog_file.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pedagogy::actors {

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

class trainer_actor : public trainer_handle::base {
public:
  trainer_actor(caf::actor_config& config, trainer_setup setup)
    : trainer_handle::base(config), cfg_(*setup.cfg), t_(setup.cfg->train),
      resolved_toml_(*setup.resolved_toml), run_(*setup.run), actors_(*setup.actors),
      outcome_(std::move(setup.outcome)), inspector_(std::move(setup.inspector)),
      timeout_(request_timeout_of(*setup.cfg)), logger_(log::get("trainer")) {}

  const char* name() const override {
    return "trainer";
  }

  behavior_type make_behavior() override;

private:
  using clock_type = std::chrono::steady_clock;

  static double since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
  }

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

  void fail(std::exception_ptr error);

  [[noreturn]] void fail(const std::string& what, const caf::error& e) {
    throw std::runtime_error(fmt::format("{}: {}", what, system().render(e)));
  }

  // ---- live inspection
  // ---------------------------------------------------------------------------

  void enter(phase p);

  static const char* name_of(phase p);

  // Tells the inspector where the run stands; `state` overrides the phase at the end.
  void report(const char* state = nullptr, const std::string& error = {});

  void start();

  // ---- rolling out -----------------------------------------------------------------------------

  void start_rollout(int64_t step);

  // The classroom with the ped_teacher's generator in the trained policy's seat.
  role_generators teacher_generators() const;

  // A rollout schedule for `jobs`; its results come back tagged `tag` (a step, or a negative tag
  // for a ped_teacher rollout inside a step).
  void spawn_schedule(std::vector<dialog_job> jobs, int64_t tag, role_generators to);

  void on_rolled(int64_t step, std::vector<dialog_result> results);

  // ---- learning
  // ----------------------------------------------------------------------------------

  void learn();

  // Every data-parallel learner gets the whole batch and trains on its share; their reports
  // describe the whole batch and must agree. A NaN/inf loss or gradient never reaches the
  // weights: the learner refuses the pass, and with train.on_non_finite = "stop" the job ends.
  void send_learn(rollout_batch batch);

  void on_learned();

  // ---- Pedagogical RL (../shared/reference/privileged_pedagogical_rl.md §10.4) ------------------

  // rescue: GRPO as usual; the groups in which every sample failed are handed to the ped_teacher,
  // and its kept trajectories join the batch with imitation weight alpha.
  void rescue(const std::vector<dialog_result>& results, rollout_batch batch);

  // mix: GRPO plus alpha x imitation of a corpus buffer, refreshed from the ped_teacher on this
  // step's problems every ped.refresh_steps steps (and whenever it is empty, e.g. after a resume).
  void mix(const std::vector<dialog_result>& results, rollout_batch batch);

  // rounds: this step's dialogs are the ped_teacher's. They are scored under the ped_learner
  // (frozen for the round) and the ped_teacher takes a GRPO step on R x G. At the round's end the
  // trained ped_teacher samples ped.teacher_samples fresh dialogs of every problem of the round,
  // and the ped_learner imitates the ones kept.
  void teach(std::vector<dialog_result> results);

  void end_teacher_step();

  // rounds: the ped_teacher's learner and generator, as sync() does for the tutor's.
  void teacher_sync(int64_t version, std::function<void()> then);

  // The ped_teacher samples ped.teacher_samples dialogs of each of `problems`; they are scored
  // under the ped_learner and the kept ones come back as imitation sequences of weight `weight`.
  void corpus_from(std::vector<int64_t> problems, double weight,
                   std::function<void(std::vector<models::training_sequence>)> then);

  void on_teacher_rolled(int64_t tag, std::vector<dialog_result> results);

  // The ped_learner's learnability of each trajectory (its own view, its current weights).
  void score(const std::vector<dialog_result>& results,
             std::function<void(std::vector<models::ped_score>)> then);

  // ---- syncing: version v from the learner root to every tutor replica
  // ---------------------------

  // The sync protocol (DESIGN §6): the learner root and every tutor replica are told version v
  // at once, so each can enter the broadcast without waiting for another; each reports v.
  void sync(int64_t version, std::function<void()> then);

  // ---- checkpointing
  // -----------------------------------------------------------------------------

  void save(int64_t step, std::function<void()> then);

  // The first learner writes the model and its optimizer state; with ZeRO-1 every other learner
  // writes its shard of the optimizer state into the same folder, and the checkpoint is finished
  // once all of them have.
  void save_learner(int64_t step, std::function<void()> then);

  void finish_save(const std::filesystem::path& tmp, int64_t step,
                   const std::function<void()>& then);

  void checkpoint();

  // ---- the end of a step
  // -------------------------------------------------------------------------

  void end_step();

  void on_tick();

  // ---- progress within a step: a live line on a terminal, else a log line every
  // logging.progress_s seconds --------------------------------------------------------------------

  std::string progress_text();

  void show_progress();

  // Clears the live line before the job's last words (log lines clear it themselves).
  void end_live_line();

  // ---- stopping (a signal)
  // -----------------------------------------------------------------------

  void stop();

  // Once no rollout is running: keep every finished step, then leave.
  void stop_when_idle();

  void finish_job();

  // The log file's disk can fill too; spdlog only tells its error handler.
  void check_log();

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
  std::map<int64_t, rollout_handle> rollouts_; // running rollout schedules, by step
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

} // namespace pedagogy::actors
