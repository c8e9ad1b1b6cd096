// The keys of every TOML table, in file order, and the spelling of every enum.
//
// `describe(visitor, table)` calls `visitor.field(name, member, knob)` for each scalar or list key
// and `visitor.table(name, member)` for each nested table. The loader, the printer, the rules and
// the key lister are visitors, so adding a knob means adding one member to schema.hpp and one
// line here, with its range (every integer key has one) and whether it is built (knob.hpp).
#pragma once

#include "config/knob.hpp"
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
PEDAGOGY_ENUM_NAMES(old_logprobs_source, {old_logprobs_source::auto_, "auto"},
                    {old_logprobs_source::behaviour, "behaviour"},
                    {old_logprobs_source::recompute, "recompute"});
PEDAGOGY_ENUM_NAMES(layer_checkpointing, {layer_checkpointing::auto_, "auto"},
                    {layer_checkpointing::on, "on"}, {layer_checkpointing::off, "off"});
PEDAGOGY_ENUM_NAMES(sft_loss, {sft_loss::assistant, "assistant"}, {sft_loss::all, "all"});
PEDAGOGY_ENUM_NAMES(lr_schedule, {lr_schedule::constant, "constant"},
                    {lr_schedule::cosine, "cosine"});
PEDAGOGY_ENUM_NAMES(non_finite_policy, {non_finite_policy::stop, "stop"},
                    {non_finite_policy::skip, "skip"});
PEDAGOGY_ENUM_NAMES(cluster_mode, {cluster_mode::auto_, "auto"}, {cluster_mode::local, "local"},
                    {cluster_mode::mpi, "mpi"});
PEDAGOGY_ENUM_NAMES(weight_channel_kind, {weight_channel_kind::auto_, "auto"},
                    {weight_channel_kind::local, "local"}, {weight_channel_kind::mpi, "mpi"},
                    {weight_channel_kind::nccl, "nccl"});
PEDAGOGY_ENUM_NAMES(ped_mode, {ped_mode::off, "off"}, {ped_mode::rescue, "rescue"},
                    {ped_mode::mix, "mix"}, {ped_mode::rounds, "rounds"});
PEDAGOGY_ENUM_NAMES(ped_policy, {ped_policy::tutor, "tutor"}, {ped_policy::solver, "solver"});
PEDAGOGY_ENUM_NAMES(ped_reward_form, {ped_reward_form::product, "product"},
                    {ped_reward_form::additive, "additive"});
PEDAGOGY_ENUM_NAMES(corpus_select, {corpus_select::best_g, "best_g"},
                    {corpus_select::top_k, "top_k"}, {corpus_select::all, "all"});

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

// ---- ranges ------------------------------------------------------------------------------------

// Upper bounds: far above any real use, far below what overflows or exhausts a machine.
namespace limits {
inline constexpr int64_t tokens = int64_t{1} << 20; // a million tokens: above any context
inline constexpr int64_t sequences = 65536;         // sequences in one batch
inline constexpr int64_t samples = 1024;            // samples of one prompt, decoded together
inline constexpr int64_t steps = 1'000'000'000;     // steps of any kind
inline constexpr int64_t problems = 100'000'000;    // rows of a problem set
inline constexpr int64_t ranks = int64_t{1} << 20;  // MPI ranks of one job
inline constexpr int64_t threads = 256;             // threads of one pool (1000 hung CAF)
// Seeds are written to metrics JSON, whose readers often hold numbers as doubles.
inline constexpr int64_t seed = (int64_t{1} << 53) - 1;
} // namespace limits

inline constexpr std::string_view threads_hint =
  "0 uses one thread per core; more threads than cores only add contention";
inline constexpr std::string_view seed_hint = "any whole number from 0; equal seeds replay a run";
inline constexpr std::string_view rank_hint = "ranks are numbered from 0";

namespace limits {
// Durations in seconds: a week at most, which any clock's arithmetic holds (a deadline of
// now + 1e12 s overflows std::chrono's nanoseconds and expires at once, or never).
inline constexpr double week_s = 7 * 24 * 3600.0;
// Weights of terms in a loss or a reward: far above any tuned value, far below where a float
// overflows.
inline constexpr double weight_max = 1e3;
inline constexpr std::string_view off_hint = "0 turns it off";
} // namespace limits

// ---- keys per table ----------------------------------------------------------------------------

template <class V>
void describe(V& v, sampling_config& c) {
  v.field("temperature", c.temperature, real(0, 100, "0 is greedy"));
  v.field("top_k", c.top_k, range(0, limits::tokens, "0 turns top-k off"));
  v.field("top_p", c.top_p, real(0, 1, "1 turns nucleus sampling off", ends::open_low));
}

template <class V>
void describe(V& v, openai_config& c) {
  v.field("base_url", c.base_url, {});
  v.field("model", c.model, {});
  v.field("api_key_env", c.api_key_env, {});
  v.field("max_concurrency", c.max_concurrency, range(1, 4096, "requests in flight at once"));
  v.field("timeout_s", c.timeout_s,
          real(0, limits::week_s, "seconds for a whole call, retries included", ends::open_low));
  v.field("max_retries", c.max_retries, range(0, 100, "0 means no retry"));
  v.field("send_top_k", c.send_top_k, {});
}

template <class V>
void describe(V& v, role_config& c) {
  v.field("model", c.model, {});
  v.field("init", c.init, {});
  v.field("backend", c.backend, {});
  v.field("device", c.device, {});
  v.field("dtype", c.dtype, {});
  v.field("max_context", c.max_context,
          range(1, limits::tokens, "tokens per sequence, prompt and generation"));
  v.field("max_batch_sequences", c.max_batch_sequences,
          range(1, limits::sequences, "sequences decoded together per engine step"));
  v.field(
    "kv_cache_tokens", c.kv_cache_tokens,
    range(0, limits::sequences * limits::tokens, "0 holds max_batch_sequences x max_context"));
  v.field("kv_block_tokens", c.kv_block_tokens,
          range(1, 1024, "tokens per KV-cache block; 16 as vLLM's default"));
  v.field("replicas", c.replicas, range(1, 1024, "one generator per rank in `ranks`"));
  v.field("ranks", c.ranks, range(0, limits::ranks, rank_hint));
  v.table("sampling", c.sampling);
  v.table("openai", c.openai);
}

template <class V>
void describe(V& v, classroom_config& c) {
  v.field("max_tutor_turns", c.max_tutor_turns, range(1, 1000));
  v.field("max_tokens_in_conversation", c.max_tokens_in_conversation, range(1, limits::tokens));
  v.field("max_tokens_per_turn", c.max_tokens_per_turn, range(1, limits::tokens));
  v.field("max_tokens_per_student_attempt", c.max_tokens_per_student_attempt,
          range(1, limits::tokens));
  v.field("max_tokens_per_judge_attempt", c.max_tokens_per_judge_attempt, range(1, limits::tokens));
  v.field("number_student_attempts", c.number_student_attempts,
          range(1, limits::samples,
                "the reward needs at least one solution after the dialog; all K share the "
                "student's KV cache"));
  v.field("number_judge_attempts", c.number_judge_attempts, range(0, 64, "0 turns judging off"));
  v.field("judge_parse_rounds", c.judge_parse_rounds, range(1, 64));
  v.field("unparsed_verdict", c.unparsed_verdict, {});
  v.field("judge_rules", c.judge_rules, {});
  v.field("personas", c.personas, {});
  v.field("student_names", c.student_names, {});
  v.field("type", c.type, {});
  v.field("use_thinking", c.use_thinking, {});
  v.field("force_thinking", c.force_thinking, {});
  v.field("ignore_rejected_judge", c.ignore_rejected_judge, {});
  v.field("rejection_penalty", c.rejection_penalty, real(0, limits::weight_max, limits::off_hint));
  v.field("templates_dir", c.templates_dir, {});
  v.field("scenario_seed", c.scenario_seed, range(0, limits::seed, seed_hint));
  v.field("max_dialogs_in_flight", c.max_dialogs_in_flight,
          range(0, 1 << 20, "0 = twice the tutor's batch capacity"));
}

template <class V>
void describe(V& v, reward_config& c) {
  v.field("check", c.check, {});
  v.field("end_marker_bonus", c.end_marker_bonus, real(0, limits::weight_max, limits::off_hint));
  v.field("length_penalty", c.length_penalty, real(0, limits::weight_max, limits::off_hint));
  v.field("thinking_unbalanced_penalty", c.thinking_unbalanced_penalty,
          real(0, limits::weight_max, limits::off_hint));
  v.field("thinking_bonus", c.thinking_bonus, real(0, limits::weight_max, limits::off_hint));
}

template <class V>
void describe(V& v, train_config& c) {
  v.field("problems_per_step", c.problems_per_step, range(1, limits::sequences));
  v.field("samples_per_problem", c.samples_per_problem,
          range(2, limits::samples,
                "GRPO compares samples within a group: with one sample every advantage is 0"));
  v.field("micro_batch_size", c.micro_batch_size, range(1, limits::sequences));
  v.field("mu", c.mu, range(1, 100, "optimizer passes over each rollout batch"));
  // Above 1 nothing trains (and past float's range the optimizer step overflows at step 0).
  v.field("learning_rate", c.learning_rate, real(0, 1, "the reference uses 5e-7", ends::open_low));
  v.field("schedule", c.schedule, {});
  v.field("warmup_steps", c.warmup_steps, range(0, limits::steps, "0 means no warmup"));
  v.field("weight_decay", c.weight_decay, real(0, 10, "AdamW's decoupled decay; 0 turns it off"));
  v.field("adam_beta1", c.adam_beta1, real(0, 1, "the usual value is 0.9", ends::open_high));
  v.field("adam_beta2", c.adam_beta2, real(0, 1, "the usual value is 0.999", ends::open_high));
  v.field("adam_eps", c.adam_eps, real(0, 1, "the usual value is 1e-8", ends::open_low));
  v.field("max_grad_norm", c.max_grad_norm, real(0, 1e6, "0 turns clipping off"));
  v.field("beta", c.beta,
          real(0, limits::weight_max, "0 drops the KL term and the reference model"));
  v.field("epsilon", c.epsilon, real(0, 1, "the reference clips at 0.2", ends::open));
  v.field("epsilon_high", c.epsilon_high,
          real(0, 10, "the clip range above 1 (DAPO uses 0.28); 0 = same as epsilon"));
  v.field("scale_rewards", c.scale_rewards, {});
  v.field("std_eps", c.std_eps,
          real(0, 1, "keeps groups of equal rewards from dividing by zero; the reference uses 1e-4",
               ends::open_low));
  v.field("aggregation", c.aggregation, {});
  v.field("epochs", c.epochs, range(1, 1'000'000));
  v.field("max_steps", c.max_steps, range(0, limits::steps, "0 runs until the epochs are done"));
  v.field("max_staleness", c.max_staleness,
          range(0, 1, "0 is on-policy, 1 lets rollouts overlap learning"));
  v.field("seed", c.seed, range(0, limits::seed, seed_hint));
  v.field("on_non_finite", c.on_non_finite, {});
  v.field("logprob_chunk_tokens", c.logprob_chunk_tokens,
          range(0, limits::tokens, "0 takes a whole micro-batch's logits at once"));
  v.field("old_logprobs", c.old_logprobs, {});
  v.field("activation_checkpointing", c.activation_checkpointing, {});
  v.field("dtype", c.dtype, {});
  v.field("shard_optimizer", c.shard_optimizer, {});
}

template <class V>
void describe(V& v, data_config& c) {
  v.field("train", c.train, {});
  v.field("problem_field", c.problem_field, {});
  v.field("answer_field", c.answer_field, {});
  v.field("max_problems", c.max_problems, range(0, limits::problems, "0 uses every problem"));
  v.field("shuffle", c.shuffle, {});
}

template <class V>
void describe(V& v, eval_config& c) {
  v.field("problems", c.problems, {});
  v.field("max_problems", c.max_problems, range(0, limits::problems, "0 evaluates every problem"));
  v.field("samples_per_problem", c.samples_per_problem, range(1, limits::samples));
  v.field("pre_dialog_attempts", c.pre_dialog_attempts, {});
  v.field("reward_model", c.reward_model, {});
  v.field("reward_model_device", c.reward_model_device, {});
  v.field("reward_model_max_length", c.reward_model_max_length, range(16, limits::tokens));
  v.field("solve_samples", c.solve_samples, range(1, limits::samples));
}

template <class V>
void describe(V& v, sft_config& c) {
  v.field("train", c.train, {});
  v.field("val", c.val, {});
  v.field("val_fraction", c.val_fraction,
          real(0, 1, "the share held out for validation; 0 = no validation", ends::open_high));
  v.field("messages_field", c.messages_field, {});
  v.field("loss_on", c.loss_on, {});
  v.field("max_length", c.max_length, range(16, limits::tokens));
  v.field("pack", c.pack, {});
  v.field("micro_batch_size", c.micro_batch_size, range(1, limits::sequences));
  v.field("gradient_accumulation", c.gradient_accumulation,
          range(1, 1 << 20, "micro-batches per optimizer step"));
  v.field("learning_rate", c.learning_rate,
          real(0, 1, "the paper's SFT baseline used 2e-5", ends::open_low));
  v.field("schedule", c.schedule, {});
  v.field("warmup_ratio", c.warmup_ratio,
          real(0, 1, "the share of optimizer steps spent warming up; 0 = no warmup"));
  v.field("epochs", c.epochs, range(1, 1'000'000));
  v.field("max_steps", c.max_steps, range(0, limits::steps, "0 runs until the epochs are done"));
  v.field("val_every_steps", c.val_every_steps,
          range(0, limits::steps, "0 validates only at the end"));
  v.field("max_examples", c.max_examples, range(0, limits::problems, "0 uses every example"));
}

template <class V>
void describe(V& v, cluster_config& c) {
  v.field("mode", c.mode, {});
  v.field("weight_channel", c.weight_channel, {});
  v.field("learner_ranks", c.learner_ranks, range(0, limits::ranks, rank_hint));
  v.field("host", c.host, {});
  v.field("port", c.port, range(0, 65535, "0 picks any free port"));
  v.field("scheduler_threads", c.scheduler_threads, range(0, limits::threads, threads_hint));
  v.field("torch_threads", c.torch_threads, range(0, limits::threads, threads_hint));
  v.field("request_timeout_s", c.request_timeout_s,
          real(0, limits::week_s, "seconds a request between actors may take", ends::open_low));
  v.field("weight_bucket_mb", c.weight_bucket_mb, range(1, 65536));
  v.field(
    "collective_timeout_s", c.collective_timeout_s,
    real(0, limits::week_s, "seconds a weight broadcast or gradient sum may take; 0 = no limit"));
  v.field("unresponsive_timeout_s", c.unresponsive_timeout_s,
          real(1, limits::week_s, "seconds a rank may not answer before the job ends"));
  v.field("device_memory_gib", c.device_memory_gib,
          real(0, 1e5, "GiB per GPU, e.g. 79 for an 80 GB H100; 0 asks the device"));
}

template <class V>
void describe(V& v, logging_config& c) {
  v.field("level", c.level, {});
  v.field("run_dir", c.run_dir, {});
  v.field("log_file", c.log_file, {});
  v.field("save_dialogs", c.save_dialogs, {});
  v.field("print_every_steps", c.print_every_steps,
          range(0, limits::steps, "0 prints no progress"));
  v.field("progress_s", c.progress_s,
          real(1, limits::week_s,
               "seconds between progress lines in the log within a step (a terminal also gets a "
               "live line)"));
}

template <class V>
void describe(V& v, checkpoint_config& c) {
  v.field("dir", c.dir, {});
  v.field("every_steps", c.every_steps, range(0, limits::steps, "0 saves only at the end"));
  v.field("keep_last", c.keep_last, range(0, 1'000'000, "0 keeps every checkpoint"));
  v.field("save_optimizer", c.save_optimizer, unbuilt());
}

template <class V>
void describe(V& v, inspect_config& c) {
  v.field("enabled", c.enabled, {});
  v.field("host", c.host, {});
  v.field("port", c.port, range(0, 65535, "0 picks any free port"));
  v.field("token", c.token, secret());
  v.field("heartbeat_ms", c.heartbeat_ms,
          range(1, 3'600'000, "milliseconds between status reports"));
  v.field(
    "unresponsive_s", c.unresponsive_s,
    real(0, 86400, "seconds of silence before an actor shows as unresponsive", ends::open_low));
  v.field("keep_dialogs", c.keep_dialogs, range(0, 100'000, "finished dialogs kept for /dialogs"));
  v.field("linger_s", c.linger_s,
          real(-1, limits::week_s, "seconds to keep serving after the run; -1 = until Ctrl-C"));
}

template <class V>
void describe(V& v, ped_config& c) {
  v.field("mode", c.mode, {});
  v.field("policy", c.policy, {});
  v.field("beta", c.beta, real(0, limits::weight_max, "soft-max sharpness of G"));
  v.field("lambda", c.lambda, real(0, limits::weight_max, "G's penalty strength"));
  v.field("max_gap", c.max_gap, real(0, limits::weight_max, "nats; 0 = no clip"));
  v.field("score_temperature", c.score_temperature,
          real(0, 100, "the gap is taken on logits / this; the spec scores at 1", ends::open_low));
  v.field("reward", c.reward, {});
  v.field("additive_lambda", c.additive_lambda, real(0, limits::weight_max));
  v.field("kappa", c.kappa, real(0, limits::weight_max, "the gate's slope"));
  v.field("gamma", c.gamma, real(-limits::weight_max, 0, "the gate's midpoint, a log-prob"));
  v.field("gating", c.gating, {});
  v.field("alpha", c.alpha, real(0, limits::weight_max, "the imitation loss's weight"));
  v.field("teacher_samples", c.teacher_samples,
          range(1, limits::samples, "ped_teacher samples per problem"));
  v.field("select", c.select, {});
  v.field("top_k", c.top_k, range(1, limits::samples, "kept trajectories per problem"));
  v.field("min_g", c.min_g, real(0, 1, "G lies in (0, 1]; 0 keeps every correct trajectory"));
  v.field("leak_filter", c.leak_filter, {});
  v.field("refresh_steps", c.refresh_steps, range(1, limits::steps, "steps between refreshes"));
  v.field("teacher_steps", c.teacher_steps,
          range(1, limits::steps, "ped_teacher GRPO steps per round"));
  v.field("teacher_learning_rate", c.teacher_learning_rate,
          real(0, 1, "0 uses train.learning_rate"));
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
  v.table("sft", c.sft);
  v.table("cluster", c.cluster);
  v.table("logging", c.logging);
  v.table("checkpoint", c.checkpoint);
  v.table("inspect", c.inspect);
  v.table("ped", c.ped);
}

} // namespace pedagogy::config
