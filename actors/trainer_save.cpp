// The trainer's checkpoints and its ways out (see trainer_phases.hpp): saving a step (the learners
// write, the trainer finishes the folder), stopping on a signal once no rollout runs, finishing
// the job, and the log file's health.
#include "actors/ask_all.hpp"
#include "actors/trainer_phases.hpp"
#include "run/checkpoints.hpp"
#include "runtime/signals.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pedagogy::actors {

namespace fs = std::filesystem;

void trainer_actor::save(int64_t step, std::function<void()> then) {
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

void trainer_actor::save_learner(int64_t step, std::function<void()> then) {
  const fs::path tmp = checkpoint_tmp_dir(run_.checkpoint_dir, step);
  const size_t writers =
    t_.shard_optimizer && actors_.learners.size() > 1 ? actors_.learners.size() : 1;
  ask_all<int64_t>(
    writers,
    [&](size_t i) {
      return request(actors_.learners[i], timeout_, save_atom::value, tmp.string());
    },
    [](size_t, int64_t) {}, [this, tmp, step, then] { finish_save(tmp, step, then); },
    [this](size_t i, caf::error& e) {
      guard([&] { fail(fmt::format("saving the checkpoint failed (learner {})", i), e); });
    });
}

void trainer_actor::finish_save(const fs::path& tmp, int64_t step,
                                const std::function<void()>& then) {
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

void trainer_actor::checkpoint() {
  enter(phase::checkpointing);
  checkpoint_start_ = clock_type::now();
  const bool last = step_ + 1 == run_.total_steps;
  const int64_t every = cfg_.checkpoint.every_steps;
  if (last || (every > 0 && (step_ + 1) % every == 0))
    save(step_ + 1, [this] { end_step(); });
  else
    end_step();
}

void trainer_actor::stop() {
  enter(phase::stopping);
  for (const auto& [step, rollout] : rollouts_)
    send_exit(rollout, caf::exit_reason::user_shutdown);
  stop_when_idle();
}

void trainer_actor::stop_when_idle() {
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

void trainer_actor::finish_job() {
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

void trainer_actor::check_log() {
  log::flush();
  if (auto failure = log::write_failure(); !failure.empty())
    throw files::write_error(run_.run_dir / "pedagogy.log", failure);
}

} // namespace pedagogy::actors
