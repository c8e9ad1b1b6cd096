// The protocol between actors: every message type, its 0.17-style inspect() (so any actor can
// live on any rank), and the atoms. Tensors never travel here: token ids and floats only.
#pragma once

#include "classroom/record.hpp"
#include "inspect/status.hpp"
#include "models/ped/ped_score.hpp"
#include "models/serving/session_history.hpp"
#include "models/training/learn_report.hpp"
#include "models/training/training_sequence.hpp"
#include "rl/dialog.hpp"
#include "rl/messages.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pedagogy::actors {

// An actor for the inspector to watch: where it runs, and its handle.
struct inspected_actor : watched_actor {
  caf::actor handle;
};

// One of a rank's actors, as the rank's keeper lists them to rank 0 (rank_watch.hpp).
struct rank_actor {
  std::string role;  // "tutor", "student", "judge", "learner"
  int64_t index = 0; // replica or learner index within the role
  caf::actor handle;
};

// ---- atoms: verbs of at most 10 characters -----------------------------------------------------

// generators
using generate_atom = caf::atom_constant<caf::atom("generate")>; // a request -> its samples
using close_atom = caf::atom_constant<caf::atom("close")>;       // a session -> its token history
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;     // drop a session's work
using weights_atom = caf::atom_constant<caf::atom("weights")>;   // take weights version v
// learners
using learn_atom = caf::atom_constant<caf::atom("learn")>;     // GRPO on a rollout batch
using score_atom = caf::atom_constant<caf::atom("score")>;     // learnability, no update
using publish_atom = caf::atom_constant<caf::atom("publish")>; // offer the weights as version v
using save_atom = caf::atom_constant<caf::atom("save")>;       // write a checkpoint folder
// (learning, done, total): a learn()'s micro-batches so far, sent unasked to its asker.
using learning_atom = caf::atom_constant<caf::atom("learning")>;
// rollout schedules: (rolled, tag, results) to whoever spawned them, when every dialog is done
using rollout_done_atom = caf::atom_constant<caf::atom("rolled")>;
// inspection: every actor answers `status`; the inspector takes `join`, `metrics`, `render`
using status_atom = caf::atom_constant<caf::atom("status")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using render_atom = caf::atom_constant<caf::atom("render")>;
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
// ranks: rank 0's watch pings the other ranks' keepers and lists their actors
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
// timers an actor sends itself (the inspector's heartbeat, a schedule's look at its stop flag)
using poll_atom = caf::atom_constant<caf::atom("poll")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;

// ---- typed handles -----------------------------------------------------------------------------

// A generator (an engine, an OpenAI endpoint, a supervisor or a replica router in front of them):
// generate samples, close a session (its exact token history), report status, take new weights
// (replies with the version it now serves), cancel a session's queued work.
using generator_actor =
  caf::typed_actor<caf::replies_to<generate_atom, generate_request>::with<generate_reply>,
                   caf::replies_to<close_atom, std::string>::with<token_history>,
                   caf::replies_to<status_atom>::with<generator_status>,
                   caf::replies_to<weights_atom, int64_t>::with<int64_t>,
                   caf::reacts_to<cancel_atom, std::string>>;

// A learner: learn (GRPO and gated imitation) on a rollout batch; score (Pedagogical RL's
// learnability of each sequence, no update); publish the weights as version v through the weight
// channel; save a checkpoint folder; report status.
using learner_actor =
  caf::typed_actor<caf::replies_to<learn_atom, rollout_batch>::with<models::learn_report>,
                   caf::replies_to<score_atom, rollout_batch>::with<std::vector<models::ped_score>>,
                   caf::replies_to<publish_atom, int64_t>::with<int64_t>,
                   caf::replies_to<save_atom, std::string>::with<int64_t>,
                   caf::replies_to<status_atom>::with<learner_status>>;

// The inspector: join (watch an actor); (status, learner_status): a learner's unasked report;
// trainer_status: the trainer's phase; metrics: a finished step's metrics.jsonl line;
// dialog_progress: a dialog's latest turn; dialog_record: a finished dialog; render: a page by
// path ("/status", "/metrics", "/dialogs", "/steps") as text; poll: its heartbeat.
using inspector_actor = caf::typed_actor<
  caf::reacts_to<join_atom, inspected_actor>, caf::reacts_to<status_atom, learner_status>,
  caf::reacts_to<trainer_status>, caf::reacts_to<metrics_atom, std::string>,
  caf::reacts_to<dialog_progress>, caf::reacts_to<classroom::dialog_record>,
  caf::replies_to<render_atom, std::string>::with<std::string>, caf::reacts_to<poll_atom>>;

// The trainer: a rollout schedule's results (rolled, tag, results; a negative tag is a
// ped_teacher rollout inside a step), a learner's progress within a learn() (learning, done,
// total), and its own timer (tick: the live line, heartbeats, a signal's check).
using trainer_handle =
  caf::typed_actor<caf::reacts_to<rollout_done_atom, int64_t, std::vector<dialog_result>>,
                   caf::reacts_to<learning_atom, int64_t, int64_t>, caf::reacts_to<tick_atom>>;

// A rollout schedule: each conversation's result (index, dialog_result), and its own timer (tick:
// a look at its stop flag); it sends (rolled, tag, results) to whoever spawned it. A
// conversation takes no message: it is driven by its generators' replies.
using rollout_handle =
  caf::typed_actor<caf::reacts_to<int64_t, dialog_result>, caf::reacts_to<tick_atom>>;

// ---- inspect
// -------------------------------------------------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generate_request& x) {
  return f(caf::meta::type_name("generate_request"), x.session, x.open_session, x.messages,
           x.tokens, x.add_generation_prompt, x.temperature, x.top_k, x.top_p, x.seed,
           x.max_new_tokens, x.n, x.stop_strings, x.forced_prefix);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generated_text& x) {
  return f(caf::meta::type_name("generated_text"), x.tokens, x.logprobs, x.sampled, x.text,
           x.finish_reason, x.weights_version, x.token_count, x.stop_token);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generate_reply& x) {
  return f(caf::meta::type_name("generate_reply"), x.completions);
}

} // namespace pedagogy::actors

namespace pedagogy::models {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chat_message& x) {
  return f(caf::meta::type_name("chat_message"), x.role, x.content);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, training_sequence& x) {
  return f(caf::meta::type_name("training_sequence"), x.tokens, x.trained, x.behaviour_logprobs,
           x.advantage, x.imitation, x.answer);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, learn_report& x) {
  return f(caf::meta::type_name("learn_report"), x.sequences, x.trained_tokens, x.optimizer_steps,
           x.loss, x.pg_loss, x.kl, x.clip_fraction, x.grad_norm, x.learning_rate, x.behaviour_kl,
           x.seconds, x.skipped_passes, x.imitated_sequences, x.imitated_tokens, x.imitation_loss,
           x.gate_mean, x.gate_min, x.gate_below);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ped_score& x) {
  return f(caf::meta::type_name("ped_score"), x.g, x.soft_max_gap, x.mean_gap, x.max_gap, x.nll,
           x.tokens, x.answer_gap, x.answer_max_gap);
}

// In the namespace of the type, where argument-dependent lookup finds it.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, session_history& x) {
  return f(caf::meta::type_name("token_history"), x.tokens, x.sampled, x.logprobs, x.versions);
}

} // namespace pedagogy::models

namespace pedagogy::classroom {

// The dialog record's parts; enums and optionals travel as plain numbers and vectors (CAF 0.17
// knows neither), restored by a load callback.

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dialog_message& x) {
  return f(caf::meta::type_name("dialog_message"), x.from_tutor, x.content, x.tokens);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verdict& x) {
  bool ok = x.value == decision::ok;
  return f(caf::meta::type_name("verdict"), ok, x.reasoning,
           caf::meta::load_callback([&]() -> caf::error {
             x.value = ok ? decision::ok : decision::reject;
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, judge_record& x) {
  return f(caf::meta::type_name("judge_record"), x.rule, x.verdicts, x.unparsed);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, solution_record& x) {
  return f(caf::meta::type_name("solution_record"), x.text, x.extracted, x.correct, x.tokens);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reward_breakdown& x) {
  std::vector<double> solve_rate;
  if (x.solve_rate)
    solve_rate.push_back(*x.solve_rate);
  return f(caf::meta::type_name("reward_breakdown"), solve_rate, x.end, x.thinking, x.end_marker,
           x.length, x.total, caf::meta::load_callback([&]() -> caf::error {
             x.solve_rate.reset();
             if (!solve_rate.empty())
               x.solve_rate = solve_rate.front();
             return caf::none;
           }));
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dialog_record& x) {
  return f(caf::meta::type_name("dialog_record"), x.id, x.status, x.error, x.step, x.problem_index,
           x.sample, x.problem, x.answer, x.type, x.student_name, x.persona, x.messages,
           x.judgements, x.solutions, x.reward, x.rejected, x.ended_by_tutor, x.tutor_turns,
           x.tutor_tokens, x.student_tokens, x.judge_tokens, x.solution_tokens, x.weights_version,
           x.seconds, x.waiting_seconds, x.ped_teacher);
}

} // namespace pedagogy::classroom

namespace pedagogy::actors {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generator_status& x) {
  return f(caf::meta::type_name("generator_status"), x.role, x.running, x.waiting, x.sessions,
           x.cached_tokens, x.kv_held_tokens, x.prefill_computed, x.prefill_reused, x.generated,
           x.steps, x.evictions, x.busy_seconds, x.weights_version, x.device, x.kv_capacity,
           x.host_memory, x.device_memory, x.last_error);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, learner_status& x) {
  return f(caf::meta::type_name("learner_status"), x.state, x.device, x.learn_calls,
           x.trained_tokens, x.micro_done, x.micro_total, x.busy_seconds, x.weights_version,
           x.host_memory, x.device_memory, x.last_error);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, trainer_status& x) {
  return f(caf::meta::type_name("trainer_status"), x.state, x.step, x.total_steps, x.completed,
           x.dialogs_total, x.weights_version, x.step_seconds, x.host_memory, x.last_error);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dialog_progress& x) {
  return f(caf::meta::type_name("dialog_progress"), x.id, x.step, x.phase, x.tutor_turns, x.problem,
           x.student_name, x.persona, x.ped_teacher, x.messages, x.seconds);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inspected_actor& x) {
  return f(caf::meta::type_name("inspected_actor"), x.role, x.index, x.rank, x.node, x.device,
           x.kind, x.handle);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rank_actor& x) {
  return f(caf::meta::type_name("rank_actor"), x.role, x.index, x.handle);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dialog_result& x) {
  return f(caf::meta::type_name("dialog_result"), x.record, x.tutor, x.learner_view,
           x.answer_tokens);
}

// ---- training ----------------------------------------------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rollout_batch& x) {
  return f(caf::meta::type_name("rollout_batch"), x.sequences);
}

// Announces every message type to an actor system (needed to cross process boundaries).
void add_message_types(caf::actor_system_config& config);

} // namespace pedagogy::actors
