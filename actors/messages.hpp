// The protocol between actors: every message type, its 0.17-style inspect() (so any actor can
// live on any rank), and the atoms. Tensors never travel here: token ids and floats only.
#pragma once

#include "classroom/record.hpp"
#include "models/learn_report.hpp"
#include "models/ped_score.hpp"
#include "models/session_history.hpp"
#include "models/training_sequence.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace pedagogy::actors {

// ---- atoms: verbs of at most 10 characters -----------------------------------------------------

using generate_atom = caf::atom_constant<caf::atom("generate")>;
using close_atom = caf::atom_constant<caf::atom("close")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using step_atom = caf::atom_constant<caf::atom("step")>;
using weights_atom = caf::atom_constant<caf::atom("weights")>;
using join_atom = caf::atom_constant<caf::atom("join")>;
using render_atom = caf::atom_constant<caf::atom("render")>;
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
using poll_atom = caf::atom_constant<caf::atom("poll")>;
using ping_atom = caf::atom_constant<caf::atom("ping")>;
using list_atom = caf::atom_constant<caf::atom("list")>;

// ---- generation
// ----------------------------------------------------------------------------------

// One chat message.
struct chat_turn {
  std::string role; // "system", "user" or "assistant"
  std::string content;
};

// A request to a generator. A session's first request carries its whole dialog; later ones only
// the messages new since its last turn (the generator keeps the exact tokens).
struct generate_request {
  std::string session;             // "" = a one-off prompt
  bool open_session = false;       // true: start `session`; false: continue it
  std::vector<chat_turn> messages; // rendered with the model's chat format
  std::vector<int32_t> tokens;     // raw prompt ids instead, when `messages` is empty
  bool add_generation_prompt = true;
  double temperature = 1.0; // 0 = greedy
  int64_t top_k = 0;        // 0 = off
  double top_p = 1.0;       // 1 = off
  uint64_t seed = 0;        // sample i uses seed + i
  int64_t max_new_tokens = 256;
  int64_t n = 1; // samples of the same prompt
  std::vector<std::string> stop_strings;
  std::string forced_prefix; // text every sample starts with (e.g. "<think>")
};

// One sample.
struct generated_text {
  std::vector<int32_t> tokens;  // exact sampled ids, end-of-turn token included
  std::vector<float> logprobs;  // log_softmax(logits / T) per token
  std::vector<uint8_t> sampled; // 1 = sampled, 0 = forced
  std::string text;             // without the end-of-turn token or stop string
  std::string finish_reason;    // "stop", "length" or "cancelled"
  int64_t weights_version = 0;
  // Tokens generated, end-of-turn included, when `tokens` is empty (an HTTP endpoint returns no
  // ids, only its usage figures or a count by the role's tokenizer); 0 = unknown.
  int64_t token_count = 0;
  // The last of `tokens` is the stop token that ended the sample, not content; false for a stop
  // string, which ends a sample without one.
  bool stop_token = false;
};

struct generate_reply {
  std::vector<generated_text> completions; // n of them
};

// A session's exact token history, returned when it is closed.
using token_history = models::session_history;

// What a generator is doing, for logs and live inspection.
struct generator_status {
  std::string role;
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t sessions = 0;
  int64_t cached_tokens = 0;  // tokens in KV caches, a fork's shared prompt once per sample
  int64_t kv_held_tokens = 0; // KV memory held, in tokens: blocks in use x block size
  int64_t prefill_computed = 0;
  int64_t prefill_reused = 0;
  int64_t generated = 0;
  int64_t steps = 0;
  int64_t evictions = 0;
  double busy_seconds = 0;
  int64_t weights_version = 0;
  // For live inspection: where it runs, its KV cache's capacity, the memory of its process and
  // device (-1 = unknown, e.g. on CPU), and the last request it refused or failed ("" = none).
  std::string device;
  int64_t kv_capacity = 0;
  int64_t host_memory = 0;
  int64_t device_memory = -1;
  std::string last_error;
};

// What a learner is doing, for live inspection: answered to `status` between messages, and sent
// unasked to whoever asked last while a long learn() runs (after each micro-batch, at most once
// per heartbeat), so that a busy learner is not taken for a dead one.
struct learner_status {
  std::string state = "idle"; // "idle", "learning", "scoring", "publishing" or "saving"
  std::string device;
  int64_t learn_calls = 0;    // rollout batches learned from
  int64_t trained_tokens = 0; // loss tokens over every pass so far
  int64_t micro_done = 0;     // of the learn() in progress
  int64_t micro_total = 0;
  double busy_seconds = 0;
  int64_t weights_version = 0; // the last version it published
  int64_t host_memory = 0;
  int64_t device_memory = -1;
  std::string last_error;
};

// The trainer's phase and progress, sent to the inspector at every phase change and heartbeat.
struct trainer_status {
  std::string state; // "rolling_out", "learning", "syncing", "checkpointing", "stopping",
                     // "finished" or "failed"
  int64_t step = 0;  // the step being worked on
  int64_t total_steps = 0;
  int64_t completed = 0;     // steps whose update is applied
  int64_t dialogs_total = 0; // of a step
  int64_t weights_version = 0;
  double step_seconds = 0; // since the step started
  int64_t host_memory = 0;
  std::string last_error;
};

// A dialog in flight, as the inspector shows it: sent by its conversation after every call.
struct dialog_progress {
  std::string id;
  int64_t step = 0;
  std::string phase; // the conversation's phase: "tutor_turn", "student_turn", "judging", ...
  int64_t tutor_turns = 0;
  std::string problem;
  std::string student_name;
  std::string persona;
  bool ped_teacher = false;
  std::vector<classroom::dialog_message> messages; // so far, as the tutor sees them
  double seconds = 0;                              // since it started
};

// An actor for the inspector to watch, as the job that placed it knows it.
struct inspected_actor {
  std::string role;  // "tutor", "student", "judge", "learner", "ped_teacher", ...
  int64_t index = 0; // replica or learner index within the role
  int64_t rank = 0;
  std::string node;
  std::string device;
  std::string kind; // "generator" (answers generator_status) or "learner" (learner_status)
  caf::actor handle;
};

// One of a rank's actors, as the rank's keeper lists them to rank 0 (rank_watch.hpp).
struct rank_actor {
  std::string role;  // "tutor", "student", "judge", "learner"
  int64_t index = 0; // replica or learner index within the role
  caf::actor handle;
};

// ---- inspect
// -------------------------------------------------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chat_turn& x) {
  return f(caf::meta::type_name("chat_turn"), x.role, x.content);
}

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

// ---- training ----------------------------------------------------------------------------------

// The dialogs of one step as training sequences, advantages included.
struct rollout_batch {
  std::vector<models::training_sequence> sequences;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rollout_batch& x) {
  return f(caf::meta::type_name("rollout_batch"), x.sequences);
}

// Announces every message type to an actor system (needed to cross process boundaries).
void add_message_types(caf::actor_system_config& config);

} // namespace pedagogy::actors
