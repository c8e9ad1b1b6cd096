// One dialog against the generators (see dialog.hpp).
#include "rl/dialog.hpp"

#include "classroom/rule_judge.hpp"
#include "classroom/verdict.hpp"
#include "rl/ped_views.hpp"
#include "runtime/errors.hpp"
#include "runtime/seeds.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace pedagogy::actors {

namespace {

// Tokens a sample generated, end-of-turn included: its ids, or the count an HTTP endpoint
// gives instead of ids.
int64_t generated_tokens(const generated_text& c) {
  return c.tokens.empty() ? c.token_count : static_cast<int64_t>(c.tokens.size());
}

// Tokens of a message's content, for the dialog's budget and the length penalty: the generated
// tokens without the end-of-turn token, when one was generated (a stop string ends a sample
// without one). An HTTP endpoint's count holds an end token whenever it stopped.
int64_t content_tokens(const generated_text& c) {
  const int64_t n = generated_tokens(c);
  const bool end_token = c.tokens.empty() ? c.finish_reason == "stop" : c.stop_token;
  return end_token && n > 0 ? n - 1 : n;
}

const char* role_name(role_kind role) {
  switch (role) {
    case role_kind::tutor:
      return "tutor";
    case role_kind::student:
      return "student";
    case role_kind::judge:
      return "judge";
  }
  return "?";
}

} // namespace

std::string dialog_id(const dialog_job& job) {
  // Counted as a person counts: step N, problem P of the run's set (problem_index + 1), sample K.
  auto id = fmt::format("{}/{}/{}", job.step + 1, job.problem_index + 1, job.sample + 1);
  if (job.attempt_only)
    id += "/attempt";
  if (job.privileged)
    id += "/ped_teacher"; // its own sessions, beside the same step's on-policy dialog
  return id;
}

dialog_runner::dialog_runner(std::shared_ptr<const classroom_setup> setup, dialog_job job)
  : setup_(std::move(setup)), job_(std::move(job)),
    dialog_(classroom::dialog_type::guided, setup_->limits),
    started_(std::chrono::steady_clock::now()) {
  const auto& s = *setup_;
  PEDAGOGY_CHECK(!s.personas.empty(), "a classroom needs at least one persona");
  const auto scene = classroom::choose_scenario(job_.problem.text, s.scenario_seed,
                                                s.student_names.size(), s.personas.size());
  const auto type = s.forced_type.value_or(scene.type);
  auto limits = s.limits;
  if (job_.max_tutor_turns > 0)
    limits.max_tutor_turns = job_.max_tutor_turns;
  dialog_ = classroom::conversation(type, std::move(limits));
  cast_ = {job_.problem.text, s.student_names.empty() ? "" : s.student_names[scene.name],
           s.personas[scene.persona], s.use_thinking};
  id_ = dialog_id(job_);
  auto& r = record_;
  r.id = id_;
  r.step = job_.step + 1;
  r.problem_index = job_.problem_index;
  r.sample = job_.sample + 1;
  r.problem = job_.problem.text;
  r.answer = job_.problem.answer;
  r.type = job_.attempt_only                        ? "attempt"
           : s.solver                               ? "solve"
           : type == classroom::dialog_type::guided ? "guided"
                                                    : "attempted";
  r.ped_teacher = job_.privileged;
  PEDAGOGY_CHECK(!(s.solver || job_.privileged) || s.ped.has_value(),
                 "dialog {}: a solver or ped_teacher dialog needs the ped templates", id_);
  r.student_name = cast_.student_name;
  r.persona = cast_.persona;
  dialog_.start();
}

std::optional<dialog_call> dialog_runner::next() {
  PEDAGOGY_CHECK(waiting_ == step_kind::none, "dialog {}: next() while a call is pending", id_);
  if (retry_) {
    retry_ = false;
    waiting_ = last_kind_;
    call_started_ = std::chrono::steady_clock::now();
    return last_call_;
  }
  auto close = [&](role_kind role, const char* session) {
    dialog_call call{role, call_stage::close, {}};
    call.request.session = id_ + session;
    waiting_ = step_kind::close;
    last_call_ = call;
    return call;
  };
  if (job_.attempt_only) {
    if (!failed_ && !attempted_)
      return remember(attempt());
    return std::nullopt;
  }
  if (setup_->solver) {
    // One turn: the trained policy solves the problem; its session closes as soon as it has.
    if (!failed_ && !solver_asked_)
      return remember(solver_turn());
    if (tutor_open_)
      return close(role_kind::tutor, "/tutor");
    return std::nullopt;
  }
  for (;;) {
    using classroom::phase;
    const phase p = dialog_.current();
    if (!failed_ && p == phase::tutor_turn)
      return remember(tutor_turn());
    if (!failed_ && p == phase::student_turn)
      return remember(student_turn());
    // The talking is over (or failed): the tutor's history is complete, free its cache now.
    if (tutor_open_)
      return close(role_kind::tutor, "/tutor");
    if (!failed_ && p == phase::judging) {
      if (!setup_->rule_judge)
        return remember(judge_round());
      const auto v = classroom::rule_verdict(dialog_.judge_rule(), dialog_, job_.problem.answer);
      dialog_.on_verdicts(std::vector<std::optional<classroom::verdict>>(
        static_cast<size_t>(dialog_.verdicts_wanted()), v));
      continue;
    }
    if (!failed_ && p == phase::solving)
      return remember(solutions());
    if (!failed_ && p == phase::grading) {
      grade();
      continue;
    }
    if (student_open_)
      return close(role_kind::student, "/student");
    return std::nullopt;
  }
}

dialog_call dialog_runner::remember(dialog_call call) {
  last_call_ = call;
  last_kind_ = waiting_;
  call_started_ = std::chrono::steady_clock::now();
  return call;
}

generate_request dialog_runner::request(const role_sampling& sampling, int64_t max_new_tokens) {
  generate_request r;
  r.temperature = sampling.temperature;
  r.top_k = sampling.top_k;
  r.top_p = sampling.top_p;
  r.seed = stream_value(job_.seed, static_cast<uint64_t>(calls_++));
  r.max_new_tokens = max_new_tokens;
  return r;
}

std::vector<models::chat_message>
dialog_runner::unseen(const std::vector<models::chat_message>& view, size_t seen) {
  std::vector<models::chat_message> out;
  for (size_t i = seen; i < view.size(); ++i)
    out.push_back({view[i].role, view[i].content});
  return out;
}

int64_t dialog_runner::turn_limit() const {
  if (job_.turn_tokens.empty())
    return setup_->max_tokens_per_turn;
  return job_.turn_tokens[dialog_.messages().size() % job_.turn_tokens.size()];
}

dialog_call dialog_runner::tutor_turn() {
  const auto& s = *setup_;
  dialog_call call{role_kind::tutor, call_stage::tutor, request(s.tutor, turn_limit())};
  auto& r = call.request;
  r.session = id_ + "/tutor";
  r.open_session = !tutor_open_;
  auto view = classroom::tutor_view(s.prompts, cast_, dialog_);
  if (job_.privileged) {
    // Only the system message differs, and only the session's first request carries it.
    if (!tutor_open_)
      learner_prompt_ = view;
    view = classroom::with_privileged(
      std::move(view), classroom::privileged_block(*s.ped, job_.problem.text, job_.problem.answer));
    if (!tutor_open_)
      teacher_prompt_ = view;
  }
  r.messages = unseen(view, tutor_seen_);
  if (s.force_thinking)
    r.forced_prefix = "<think>";
  tutor_open_ = true;
  waiting_ = step_kind::tutor_turn;
  return call;
}

dialog_call dialog_runner::solver_turn() {
  const auto& s = *setup_;
  dialog_call call{role_kind::tutor, call_stage::tutor,
                   request(s.tutor, s.max_tokens_per_student_attempt)};
  auto& r = call.request;
  r.session = id_ + "/tutor";
  r.open_session = true;
  auto view = classroom::solver_view(*s.ped, job_.problem.text);
  learner_prompt_ = view;
  if (job_.privileged)
    view = classroom::with_privileged(
      std::move(view), classroom::privileged_block(*s.ped, job_.problem.text, job_.problem.answer));
  teacher_prompt_ = view;
  r.messages = teacher_prompt_;
  tutor_open_ = true;
  solver_asked_ = true;
  waiting_ = step_kind::tutor_turn;
  return call;
}

dialog_call dialog_runner::student_turn() {
  const auto& s = *setup_;
  dialog_call call{role_kind::student, call_stage::student, request(s.student, turn_limit())};
  auto& r = call.request;
  if (dialog_.type() == classroom::dialog_type::attempted && dialog_.messages().empty()) {
    // The attempt is a one-off prompt of its own; the student's session starts after it.
    for (auto& m : classroom::initial_attempt_view(s.prompts, cast_))
      r.messages.push_back({m.role, m.content});
    waiting_ = step_kind::initial_attempt;
    return call;
  }
  r.session = id_ + "/student";
  r.open_session = !student_open_;
  r.messages = unseen(classroom::student_view(s.prompts, cast_, dialog_), student_seen_);
  student_open_ = true;
  waiting_ = step_kind::student_turn;
  return call;
}

dialog_call dialog_runner::judge_round() {
  const auto& s = *setup_;
  dialog_call call{role_kind::judge, call_stage::judge,
                   request(s.judge, s.max_tokens_per_judge_attempt)};
  call.request.n = dialog_.verdicts_wanted();
  call.request.messages = {
    {"user", classroom::judge_prompt(s.prompts, dialog_.judge_rule(), dialog_)}};
  waiting_ = step_kind::judge;
  return call;
}

dialog_call dialog_runner::solutions() {
  const auto& s = *setup_;
  dialog_call call{role_kind::student, call_stage::solutions,
                   request(s.student, s.max_tokens_per_student_attempt)};
  auto& r = call.request;
  r.n = s.number_student_attempts;
  const auto view = classroom::final_solution_view(s.prompts, cast_, dialog_);
  if (student_open_) {
    // K branches of the student's session: its cache is reused, its history is not extended.
    r.session = id_ + "/student";
    r.messages = unseen(view, student_seen_);
  } else {
    r.messages = unseen(view, 0);
  }
  waiting_ = step_kind::solutions;
  return call;
}

dialog_call dialog_runner::attempt() {
  const auto& s = *setup_;
  dialog_call call{role_kind::student, call_stage::solutions,
                   request(s.student, s.max_tokens_per_student_attempt)};
  call.request.n = s.number_student_attempts;
  for (auto& m : classroom::pre_dialog_view(s.prompts, cast_))
    call.request.messages.push_back({m.role, m.content});
  waiting_ = step_kind::attempt;
  return call;
}

void dialog_runner::on_reply(generate_reply reply) {
  const step_kind was = waiting_;
  waiting_ = step_kind::none;
  retries_ = 0;
  record_.waiting_seconds +=
    std::chrono::duration<double>(std::chrono::steady_clock::now() - call_started_).count();
  auto& c = reply.completions;
  PEDAGOGY_CHECK(!c.empty(), "dialog {}: a generator answered without completions", id_);
  auto& r = record_;
  switch (was) {
    case step_kind::tutor_turn:
      r.tutor_tokens += generated_tokens(c[0]);
      if (r.weights_version < 0 || c[0].weights_version < r.weights_version)
        r.weights_version = c[0].weights_version;
      if (setup_->solver) {
        on_solution(c[0]);
        break;
      }
      dialog_.on_tutor_reply(std::move(c[0].text), content_tokens(c[0]));
      tutor_seen_ = 1 + dialog_.messages().size();
      break;
    case step_kind::initial_attempt:
      r.student_tokens += generated_tokens(c[0]);
      dialog_.on_student_reply(classroom::wrap_attempt(setup_->prompts, c[0].text),
                               content_tokens(c[0]));
      break;
    case step_kind::student_turn:
      r.student_tokens += generated_tokens(c[0]);
      dialog_.on_student_reply(std::move(c[0].text), content_tokens(c[0]));
      student_seen_ = 1 + dialog_.messages().size();
      break;
    case step_kind::judge: {
      std::vector<std::optional<classroom::verdict>> round;
      for (const auto& one : c) {
        r.judge_tokens += generated_tokens(one);
        round.push_back(classroom::parse_verdict(one.text));
      }
      dialog_.on_verdicts(round);
      break;
    }
    case step_kind::solutions: {
      std::vector<std::string> texts;
      for (auto& one : c) {
        r.solution_tokens += generated_tokens(one);
        r.solutions.push_back({one.text, "", false, generated_tokens(one)});
        texts.push_back(std::move(one.text));
      }
      dialog_.on_solutions(std::move(texts));
      break;
    }
    case step_kind::attempt:
      for (auto& one : c) {
        r.solution_tokens += generated_tokens(one);
        r.solutions.push_back({std::move(one.text), "", false, generated_tokens(one)});
      }
      grade_solutions();
      attempted_ = true;
      break;
    case step_kind::close:
    case step_kind::none:
      PEDAGOGY_FATAL("dialog {}: a generate reply arrived while no generation was asked for", id_);
  }
}

void dialog_runner::on_solution(generated_text& reply) {
  auto& r = record_;
  classroom::solution_record solution{reply.text, "", false, generated_tokens(reply)};
  if (setup_->check) {
    const auto g = classroom::grade_solution(reply.text, job_.problem.answer, *setup_->check);
    solution.correct = g.correct;
    solution.extracted = g.extracted.value_or("");
  }
  r.messages.push_back({true, reply.text, content_tokens(reply)});
  r.solutions.push_back(std::move(solution));
  r.tutor_turns = 1;
}

void dialog_runner::on_closed(token_history history) {
  PEDAGOGY_CHECK(waiting_ == step_kind::close, "dialog {}: unexpected session history", id_);
  waiting_ = step_kind::none;
  if (last_call_->role == role_kind::tutor) {
    tutor_history_ = std::move(history);
    tutor_open_ = false;
  } else {
    student_open_ = false;
  }
}

void dialog_runner::on_failure(const std::string& reason, bool retryable) {
  const step_kind was = waiting_;
  waiting_ = step_kind::none;
  record_.waiting_seconds +=
    std::chrono::duration<double>(std::chrono::steady_clock::now() - call_started_).count();
  const char* role = role_name(last_call_->role);
  if (was == step_kind::close) {
    // Nothing to retry: the session is gone either way. Without the tutor's history the dialog
    // cannot be trained on.
    if (last_call_->role == role_kind::tutor) {
      tutor_open_ = false;
      fail(fmt::format("closing the tutor session failed: {}", reason));
    } else {
      student_open_ = false;
    }
    return;
  }
  if (!retryable) {
    // A refused retry is a symptom; the failure that made it a retry is the cause.
    fail(retries_ == 0 ? fmt::format("the {} generator refused the request: {}", role, reason)
                       : fmt::format("the {} generator failed: {}; its retry was refused: {}", role,
                                     first_failure_, reason));
    return;
  }
  if (retries_ == 0)
    first_failure_ = reason;
  if (retries_++ < setup_->max_call_retries) {
    retry_ = true;
    last_kind_ = was;
    return;
  }
  fail(fmt::format("the {} generator failed {} times: {}", role, retries_, reason));
}

void dialog_runner::abort(const std::string& reason) {
  waiting_ = step_kind::none;
  retry_ = false;
  fail(reason);
}

void dialog_runner::fail(const std::string& reason) {
  if (failed_)
    return;
  failed_ = true;
  record_.status = "failed";
  record_.error = reason;
}

void dialog_runner::grade() {
  dialog_.on_grades(grade_solutions());
}

std::vector<bool> dialog_runner::grade_solutions() {
  std::vector<bool> correct;
  for (auto& s : record_.solutions) {
    if (setup_->check) {
      const auto g = classroom::grade_solution(s.text, job_.problem.answer, *setup_->check);
      s.correct = g.correct;
      s.extracted = g.extracted.value_or("");
    } else if (auto boxed = classroom::last_boxed(s.text)) {
      s.extracted = *boxed; // recorded, never rewarded
    }
    correct.push_back(s.correct);
  }
  return correct;
}

} // namespace pedagogy::actors
