// What a dialog hands back (see dialog.hpp): its progress while it runs, and at the end its
// record, the tutor's exact token history and, for a ped_teacher dialog, the ped_learner's view.
#include "rl/dialog.hpp"
#include "rl/ped_views.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace pedagogy::actors {

dialog_progress dialog_runner::progress() const {
  dialog_progress p;
  p.id = id_;
  p.step = job_.step + 1;
  p.phase = failed_                               ? "failed"
            : setup_->solver || job_.attempt_only ? "solving"
                                                  : classroom::to_string(dialog_.current());
  p.tutor_turns = dialog_.tutor_turns();
  p.problem = record_.problem;
  p.student_name = record_.student_name;
  p.persona = record_.persona;
  p.ped_teacher = record_.ped_teacher;
  p.messages = dialog_.messages();
  p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return p;
}

dialog_result dialog_runner::finish() {
  PEDAGOGY_CHECK(waiting_ == step_kind::none && !retry_, "dialog {}: finish() mid-call", id_);
  auto& r = record_;
  if (job_.attempt_only) {
    if (!failed_ && !r.solutions.empty()) {
      const auto solved = std::count_if(r.solutions.begin(), r.solutions.end(),
                                        [](const auto& one) { return one.correct; });
      r.reward.solve_rate = static_cast<double>(solved) / static_cast<double>(r.solutions.size());
      r.reward.total = *r.reward.solve_rate;
    }
  } else if (setup_->solver) {
    // Rewarded by the answer check alone: 1 for a correct solution, 0 otherwise.
    if (!failed_ && !r.solutions.empty()) {
      const double solved = r.solutions.front().correct ? 1.0 : 0.0;
      r.reward.solve_rate = solved;
      r.reward.total = solved;
    }
  } else {
    r.messages = dialog_.messages();
    r.judgements = dialog_.judgements();
    r.rejected = dialog_.rejected();
    r.ended_by_tutor = dialog_.ended_by_tutor();
    r.tutor_turns = dialog_.tutor_turns();
    if (!failed_ && dialog_.current() == classroom::phase::done)
      r.reward = classroom::dialog_reward(dialog_, setup_->weights);
  }
  if (job_.privileged && !failed_ && !tutor_history_.tokens.empty())
    finish_ped_views();
  if (failed_) {
    tutor_history_ = {};
    learner_view_ = {};
    answer_tokens_.clear();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  return {std::move(record_), std::move(tutor_history_), std::move(learner_view_),
          std::move(answer_tokens_)};
}

void dialog_runner::finish_ped_views() {
  const auto& s = *setup_;
  if (!s.render_prompt || !s.token_text) {
    fail("a ped_teacher dialog needs the trained policy's tokenizer in the trainer's process");
    return;
  }
  try {
    auto view = learner_view(tutor_history_, s.render_prompt(teacher_prompt_),
                             s.render_prompt(learner_prompt_));
    if (!view) {
      fail("the tutor generator's prompt ids differ from this process's rendering of the same "
           "messages (are the trainer and the generator reading different model folders?)");
      return;
    }
    learner_view_ = std::move(*view);
    answer_tokens_ = answer_marks(learner_view_, s.token_text, job_.problem.answer);
  } catch (const std::exception& e) {
    fail(fmt::format("building the ped_learner's view failed: {}", e.what()));
  }
}

} // namespace pedagogy::actors
