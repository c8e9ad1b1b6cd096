// One dialog's conversation with the generators, as a plain object: the conversation actor
// (async schedule) and the lock-step baseline both drive it, so they differ only in *when*
// they send the calls it asks for.
//
//   runner.next()        -> the generator call to make now (generate or close), or none
//   runner.on_reply(r)   <- the reply to that call
//   runner.on_failure(e) <- the call failed: a transient failure is retried (up to
//                           max_call_retries), then the dialog is recorded as failed with the
//                           reason; a request the generator refuses is not retried
//   runner.finish()      -> the record, plus the tutor's exact token history for training
//
// In-process work (rule judges, grading, rewards) happens inside next(). Sessions: the tutor
// and the student each keep one generator session per dialog, so every turn sends only the new
// messages and the tutor's session returns the exact ids it was shown and sampled; both are
// closed as soon as the dialog no longer needs them (the tutor's when the talking ends).
#pragma once

#include "classroom/answer_check.hpp"
#include "classroom/conversation.hpp"
#include "classroom/problems.hpp"
#include "classroom/record.hpp"
#include "classroom/views.hpp"
#include "inspect/status.hpp"
#include "rl/messages.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pedagogy::actors {

enum class role_kind { tutor, student, judge };

struct role_sampling {
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
};

// Everything a dialog needs besides its problem, shared read-only by all dialogs of a run.
struct classroom_setup {
  classroom::prompt_set prompts;
  classroom::dialog_limits limits;
  classroom::reward_weights weights;
  std::optional<classroom::answer_mode> check; // none = every solution scores 0
  std::vector<std::string> personas;
  std::vector<std::string> student_names;
  std::optional<classroom::dialog_type> forced_type; // none = chosen per problem
  uint64_t scenario_seed = 0;
  bool use_thinking = false;
  bool force_thinking = false;
  bool rule_judge = false; // judges are rules (classroom/rule_judge), not a model
  role_sampling tutor, student, judge;
  int64_t max_tokens_per_turn = 1024;
  int64_t max_tokens_per_student_attempt = 3900;
  int64_t max_tokens_per_judge_attempt = 2048;
  int64_t number_student_attempts = 8;
  int64_t max_call_retries = 2; // per generator call, after the first try
  // A generator call not answered in this time fails (and is retried like any failure).
  std::chrono::milliseconds request_timeout{std::chrono::minutes(30)};
  // ped.policy = "solver": the trained policy (the "tutor" generator) solves each problem alone,
  // rewarded 1 when the answer check passes; no student, no judges.
  bool solver = false;
  // Pedagogical RL's templates (solver prompt, privileged block); set when a run uses them.
  std::optional<classroom::ped_prompts> ped;
  // The trained policy's chat format and tokenizer in this process, for the ped_learner's view
  // of a ped_teacher dialog; set when ped.mode != "off".
  std::function<std::vector<int32_t>(const std::vector<models::chat_message>&)> render_prompt;
  std::function<std::string(int32_t)> token_text;
};

// One dialog to run: the problem, which sample of its group, and its seed.
struct dialog_job {
  int64_t step = 0;
  int64_t problem_index = 0;
  int64_t sample = 0;
  classroom::problem problem;
  uint64_t seed = 0; // sampling seeds of its generator calls derive from it
  // Overrides the classroom's max_tutor_turns for this dialog (0 = keep it): benchmarks use it
  // to make dialogs of varied lengths, as tutors that end early do.
  int64_t max_tutor_turns = 0;
  // New-token limits of this dialog's turns, cycled (empty = the classroom's
  // max_tokens_per_turn): benchmarks use them for replies of varied lengths, as models that stop
  // on their own make them.
  std::vector<int64_t> turn_tokens;
  // Pedagogical RL: the trained policy speaks as the ped_teacher, with the privileged block (the
  // answer) in its system prompt; the dialog's result also carries the ped_learner's view.
  bool privileged = false;
  // No dialog: the student solves the problem alone, number_student_attempts times, from
  // student_attempt.txt (the evaluation's pre-dialog solve rate, and plain solve accuracy with
  // the model under test in the student's place). Its record has type "attempt", the graded
  // solutions and their correct fraction as reward.solve_rate.
  bool attempt_only = false;
};

// The id of a job's record: "<step>/<problem index>/<sample>", then "/attempt" for an attempt
// and "/ped_teacher" for a ped_teacher dialog.
std::string dialog_id(const dialog_job& job);

// The result of a dialog: its record and the tutor's token history (empty when the tutor never
// spoke or the dialog failed). A ped_teacher dialog's `tutor` is the ped_teacher's view; its
// `learner_view` is the same sampled ids after the ped_learner's own prompt, with `answer_tokens`
// 1 on the sampled tokens that spell the answer.
struct dialog_result {
  classroom::dialog_record record;
  token_history tutor;
  token_history learner_view;
  std::vector<uint8_t> answer_tokens;
};

// The kinds of call, in the order the lock-step baseline runs its phases.
enum class call_stage { close, tutor, student, judge, solutions };

struct dialog_call {
  role_kind role = role_kind::tutor;
  call_stage stage = call_stage::tutor;
  generate_request request; // for close: only `session` is used
};

class dialog_runner {
public:
  dialog_runner(std::shared_ptr<const classroom_setup> setup, dialog_job job);

  std::optional<dialog_call> next();
  void on_reply(generate_reply reply);
  void on_closed(token_history history);
  void on_failure(const std::string& reason, bool retryable = true);
  // Ends the dialog as failed (an exception escaped while preparing a call); the runner then
  // only closes its sessions.
  void abort(const std::string& reason);
  dialog_result finish();
  // Where the dialog stands, for live inspection.
  dialog_progress progress() const;

  const dialog_job& job() const {
    return job_;
  }
  const classroom_setup& setup() const {
    return *setup_;
  }

private:
  enum class step_kind {
    none,
    tutor_turn,
    initial_attempt,
    student_turn,
    judge,
    solutions,
    attempt,
    close
  };
  dialog_call remember(dialog_call call);
  dialog_call tutor_turn();
  dialog_call solver_turn();
  void on_solution(generated_text& reply);
  void finish_ped_views();
  dialog_call student_turn();
  dialog_call judge_round();
  dialog_call solutions();
  dialog_call attempt();
  std::vector<bool> grade_solutions();
  generate_request request(const role_sampling& sampling, int64_t max_new_tokens);
  int64_t turn_limit() const;
  static std::vector<models::chat_message> unseen(const std::vector<models::chat_message>& view,
                                                  size_t seen);
  void grade();
  void fail(const std::string& reason);

  std::shared_ptr<const classroom_setup> setup_;
  dialog_job job_;
  classroom::cast cast_;
  classroom::conversation dialog_;
  std::string id_;
  step_kind waiting_ = step_kind::none;
  std::optional<dialog_call> last_call_;
  step_kind last_kind_ = step_kind::none;
  bool retry_ = false;
  int64_t retries_ = 0;
  std::string first_failure_; // why the current call is being retried
  int64_t calls_ = 0;
  size_t tutor_seen_ = 0, student_seen_ = 0; // view messages each session already holds
  bool tutor_open_ = false, student_open_ = false;
  bool failed_ = false;
  token_history tutor_history_;
  // The first messages of the tutor's session as the ped_teacher and as the ped_learner see them.
  std::vector<models::chat_message> teacher_prompt_, learner_prompt_;
  bool solver_asked_ = false;
  bool attempted_ = false;
  token_history learner_view_;
  std::vector<uint8_t> answer_tokens_;
  classroom::dialog_record record_;
  std::chrono::steady_clock::time_point started_, call_started_;
};

} // namespace pedagogy::actors
