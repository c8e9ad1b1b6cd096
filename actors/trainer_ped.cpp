// The trainer's Pedagogical RL phases (../shared/reference/privileged_pedagogical_rl.md §10.4;
// see trainer_phases.hpp): what the learning phase does with a step's dialogs in rescue, mix and
// rounds mode before the learners take their batch, and the ped_teacher's rollouts, scoring and
// weight sync.
#include "actors/ask_all.hpp"
#include "actors/trainer_phases.hpp"
#include "runtime/seeds.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace pedagogy::actors {

void trainer_actor::rescue(const std::vector<dialog_result>& results, rollout_batch batch) {
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

void trainer_actor::mix(const std::vector<dialog_result>& results, rollout_batch batch) {
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

void trainer_actor::teach(std::vector<dialog_result> results) {
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
          guard(
            [&] { fail(fmt::format("the ped_teacher failed to learn at step {}", step_ + 1), e); });
        });
  });
}

void trainer_actor::end_teacher_step() {
  const bool round_end = (step_ + 1) % cfg_.ped.teacher_steps == 0 || step_ + 1 == run_.total_steps;
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

void trainer_actor::teacher_sync(int64_t version, std::function<void()> then) {
  ask_all<int64_t>(
    2,
    [&](size_t i) {
      return i == 0
               ? request(actors_.ped_teacher, timeout_, publish_atom::value, version)
               : request(actors_.ped_teacher_generator, timeout_, weights_atom::value, version);
    },
    [](size_t, int64_t) {}, [this, then] { guard(then); },
    [this, version](size_t i, caf::error& e) {
      guard([&] {
        fail(i == 0
               ? fmt::format("the ped_teacher could not send weights v{}", version)
               : fmt::format("the ped_teacher's generator could not take weights v{}", version),
             e);
      });
    });
}

void trainer_actor::corpus_from(std::vector<int64_t> problems, double weight,
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

void trainer_actor::on_teacher_rolled(int64_t tag, std::vector<dialog_result> results) {
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

void trainer_actor::score(const std::vector<dialog_result>& results,
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

} // namespace pedagogy::actors
