// The keys of every TOML table, in file order, and the spelling of every enum.
//
// `describe(visitor, table)` calls `visitor.field(name, member)` for each scalar or list key and
// `visitor.table(name, member)` for each nested table. The loader, the printer and the key lister
// are visitors, so adding a knob means adding one member to schema.hpp and one line here.
#pragma once

#include "config/schema.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace pedagogy::config {

// ---- enum spellings ----------------------------------------------------------------------------

template <class E>
struct enum_names;

#define PEDAGOGY_ENUM_NAMES(E, ...)                                                                \
  template <>                                                                                      \
  struct enum_names<E> {                                                                           \
    static constexpr std::pair<E, std::string_view> values[] = {__VA_ARGS__};                      \
  }

PEDAGOGY_ENUM_NAMES(backend_kind, {backend_kind::engine, "engine"},
                    {backend_kind::openai, "openai"}, {backend_kind::rule, "rule"});
PEDAGOGY_ENUM_NAMES(dtype_kind, {dtype_kind::auto_, "auto"}, {dtype_kind::float32, "float32"},
                    {dtype_kind::bfloat16, "bfloat16"});
PEDAGOGY_ENUM_NAMES(conversation_type, {conversation_type::random, "random"},
                    {conversation_type::guided, "guided"},
                    {conversation_type::attempted, "attempted"});
PEDAGOGY_ENUM_NAMES(verdict_policy, {verdict_policy::reject, "reject"}, {verdict_policy::ok, "ok"});
PEDAGOGY_ENUM_NAMES(answer_check, {answer_check::math, "math"}, {answer_check::exact, "exact"},
                    {answer_check::none, "none"});
PEDAGOGY_ENUM_NAMES(loss_aggregation, {loss_aggregation::token_mean, "token_mean"},
                    {loss_aggregation::sequence_mean, "sequence_mean"},
                    {loss_aggregation::micro_batch_token_mean, "micro_batch_token_mean"});
PEDAGOGY_ENUM_NAMES(lr_schedule, {lr_schedule::constant, "constant"},
                    {lr_schedule::cosine, "cosine"});
PEDAGOGY_ENUM_NAMES(cluster_mode, {cluster_mode::auto_, "auto"}, {cluster_mode::local, "local"},
                    {cluster_mode::mpi, "mpi"});
PEDAGOGY_ENUM_NAMES(weight_channel_kind, {weight_channel_kind::auto_, "auto"},
                    {weight_channel_kind::local, "local"}, {weight_channel_kind::mpi, "mpi"},
                    {weight_channel_kind::nccl, "nccl"});

#undef PEDAGOGY_ENUM_NAMES

template <class E>
concept config_enum = requires {
  enum_names<E>::values;
};

template <config_enum E>
std::string_view to_string(E value) {
  for (const auto& [e, name] : enum_names<E>::values)
    if (e == value)
      return name;
  return "?";
}

template <config_enum E>
std::optional<E> enum_from_string(std::string_view text) {
  for (const auto& [e, name] : enum_names<E>::values)
    if (name == text)
      return e;
  return std::nullopt;
}

// "engine | openai | rule", for error messages.
template <config_enum E>
std::string enum_choices() {
  std::string out;
  for (const auto& [e, name] : enum_names<E>::values) {
    if (!out.empty())
      out += " | ";
    out += name;
  }
  return out;
}

// ---- keys per table ----------------------------------------------------------------------------

template <class V>
void describe(V& v, sampling_config& c) {
  v.field("temperature", c.temperature);
  v.field("top_k", c.top_k);
  v.field("top_p", c.top_p);
}

template <class V>
void describe(V& v, openai_config& c) {
  v.field("base_url", c.base_url);
  v.field("model", c.model);
  v.field("api_key_env", c.api_key_env);
  v.field("max_concurrency", c.max_concurrency);
  v.field("timeout_s", c.timeout_s);
  v.field("max_retries", c.max_retries);
  v.field("send_top_k", c.send_top_k);
}

template <class V>
void describe(V& v, role_config& c) {
  v.field("model", c.model);
  v.field("init", c.init);
  v.field("backend", c.backend);
  v.field("device", c.device);
  v.field("dtype", c.dtype);
  v.field("max_context", c.max_context);
  v.field("max_batch_sequences", c.max_batch_sequences);
  v.field("kv_cache_tokens", c.kv_cache_tokens);
  v.field("replicas", c.replicas);
  v.field("ranks", c.ranks);
  v.table("sampling", c.sampling);
  v.table("openai", c.openai);
}

template <class V>
void describe(V& v, classroom_config& c) {
  v.field("max_tutor_turns", c.max_tutor_turns);
  v.field("max_tokens_in_conversation", c.max_tokens_in_conversation);
  v.field("max_tokens_per_turn", c.max_tokens_per_turn);
  v.field("max_tokens_per_student_attempt", c.max_tokens_per_student_attempt);
  v.field("max_tokens_per_judge_attempt", c.max_tokens_per_judge_attempt);
  v.field("number_student_attempts", c.number_student_attempts);
  v.field("number_judge_attempts", c.number_judge_attempts);
  v.field("judge_parse_rounds", c.judge_parse_rounds);
  v.field("unparsed_verdict", c.unparsed_verdict);
  v.field("judge_rules", c.judge_rules);
  v.field("personas", c.personas);
  v.field("student_names", c.student_names);
  v.field("type", c.type);
  v.field("use_thinking", c.use_thinking);
  v.field("force_thinking", c.force_thinking);
  v.field("ignore_rejected_judge", c.ignore_rejected_judge);
  v.field("rejection_penalty", c.rejection_penalty);
  v.field("templates_dir", c.templates_dir);
  v.field("scenario_seed", c.scenario_seed);
}

template <class V>
void describe(V& v, reward_config& c) {
  v.field("check", c.check);
  v.field("end_marker_bonus", c.end_marker_bonus);
  v.field("length_penalty", c.length_penalty);
  v.field("thinking_unbalanced_penalty", c.thinking_unbalanced_penalty);
  v.field("thinking_bonus", c.thinking_bonus);
}

template <class V>
void describe(V& v, train_config& c) {
  v.field("problems_per_step", c.problems_per_step);
  v.field("samples_per_problem", c.samples_per_problem);
  v.field("micro_batch_size", c.micro_batch_size);
  v.field("mu", c.mu);
  v.field("learning_rate", c.learning_rate);
  v.field("schedule", c.schedule);
  v.field("warmup_steps", c.warmup_steps);
  v.field("weight_decay", c.weight_decay);
  v.field("adam_beta1", c.adam_beta1);
  v.field("adam_beta2", c.adam_beta2);
  v.field("adam_eps", c.adam_eps);
  v.field("max_grad_norm", c.max_grad_norm);
  v.field("beta", c.beta);
  v.field("epsilon", c.epsilon);
  v.field("epsilon_high", c.epsilon_high);
  v.field("scale_rewards", c.scale_rewards);
  v.field("std_eps", c.std_eps);
  v.field("aggregation", c.aggregation);
  v.field("epochs", c.epochs);
  v.field("max_steps", c.max_steps);
  v.field("max_staleness", c.max_staleness);
  v.field("seed", c.seed);
}

template <class V>
void describe(V& v, data_config& c) {
  v.field("train", c.train);
  v.field("problem_field", c.problem_field);
  v.field("answer_field", c.answer_field);
  v.field("max_problems", c.max_problems);
  v.field("shuffle", c.shuffle);
}

template <class V>
void describe(V& v, eval_config& c) {
  v.field("problems", c.problems);
  v.field("max_problems", c.max_problems);
  v.field("samples_per_problem", c.samples_per_problem);
  v.field("pre_dialog_attempts", c.pre_dialog_attempts);
}

template <class V>
void describe(V& v, cluster_config& c) {
  v.field("mode", c.mode);
  v.field("weight_channel", c.weight_channel);
  v.field("learner_ranks", c.learner_ranks);
  v.field("host", c.host);
  v.field("port", c.port);
  v.field("scheduler_threads", c.scheduler_threads);
  v.field("torch_threads", c.torch_threads);
  v.field("weight_bucket_mb", c.weight_bucket_mb);
  v.field("collective_timeout_s", c.collective_timeout_s);
}

template <class V>
void describe(V& v, logging_config& c) {
  v.field("level", c.level);
  v.field("run_dir", c.run_dir);
  v.field("log_file", c.log_file);
  v.field("save_dialogs", c.save_dialogs);
  v.field("print_every_steps", c.print_every_steps);
}

template <class V>
void describe(V& v, checkpoint_config& c) {
  v.field("dir", c.dir);
  v.field("every_steps", c.every_steps);
  v.field("keep_last", c.keep_last);
  v.field("save_optimizer", c.save_optimizer);
}

template <class V>
void describe(V& v, inspect_config& c) {
  v.field("enabled", c.enabled);
  v.field("host", c.host);
  v.field("port", c.port);
  v.field("heartbeat_ms", c.heartbeat_ms);
}

template <class V>
void describe(V& v, config& c) {
  v.table("tutor", c.tutor);
  v.table("student", c.student);
  v.table("judge", c.judge);
  v.table("classroom", c.classroom);
  v.table("reward", c.reward);
  v.table("train", c.train);
  v.table("data", c.data);
  v.table("eval", c.eval);
  v.table("cluster", c.cluster);
  v.table("logging", c.logging);
  v.table("checkpoint", c.checkpoint);
  v.table("inspect", c.inspect);
}

} // namespace pedagogy::config
