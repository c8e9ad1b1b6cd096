// What the RL step's parts take from a config (see settings.hpp).
#include "rl/settings.hpp"

#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"

#include <ATen/Context.h>

#include <cmath>

namespace pedagogy::actors {

namespace {

role_sampling sampling_of(const config::role_config& role) {
  return {role.sampling.temperature, role.sampling.top_k, role.sampling.top_p};
}

} // namespace

models::learner_options learner_options_from(const config::config& cfg, int64_t rollout_steps) {
  const auto& t = cfg.train;
  models::learner_options o;
  o.grpo.epsilon = t.epsilon;
  o.grpo.epsilon_high = t.epsilon_high;
  o.grpo.beta = t.beta;
  o.grpo.scale_rewards = t.scale_rewards;
  o.grpo.std_eps = t.std_eps;
  switch (t.aggregation) {
    case config::loss_aggregation::token_mean:
      o.grpo.reduce = models::aggregation::token_mean;
      break;
    case config::loss_aggregation::sequence_mean:
      o.grpo.reduce = models::aggregation::sequence_mean;
      break;
    case config::loss_aggregation::micro_batch_token_mean:
      o.grpo.reduce = models::aggregation::micro_batch_token_mean;
      break;
  }
  o.adam = {t.adam_beta1, t.adam_beta2, t.adam_eps, t.weight_decay};
  o.learning_rate = t.learning_rate;
  o.lr_schedule = t.schedule == config::lr_schedule::cosine ? models::schedule::cosine
                                                            : models::schedule::constant;
  o.warmup_steps = t.warmup_steps;
  o.total_steps = rollout_steps * t.mu;
  o.max_grad_norm = t.max_grad_norm;
  o.micro_batch_size = t.micro_batch_size;
  o.mu = t.mu;
  o.temperature = cfg.tutor.sampling.temperature;
  o.skip_non_finite = t.on_non_finite == config::non_finite_policy::skip;
  o.logprob_chunk = t.logprob_chunk_tokens;
  // dtype auto is bfloat16 on CUDA, float32 on a CPU, for the learner as for the generators;
  // old log-probs auto: recompute when the tutor generator samples in another precision.
  const auto& tutor = cfg.tutor;
  const bool on_cpu = tutor.device == "cpu" || (tutor.device == "auto" && !at::hasCUDA());
  const auto resolve = [on_cpu](config::dtype_kind kind) {
    return kind == config::dtype_kind::float32 || (kind == config::dtype_kind::auto_ && on_cpu)
             ? at::kFloat
             : at::kBFloat16;
  };
  o.dtype = resolve(t.dtype);
  o.recompute_old_logprobs =
    t.old_logprobs == config::old_logprobs_source::recompute ||
    (t.old_logprobs == config::old_logprobs_source::auto_ && resolve(tutor.dtype) != o.dtype);
  using mode = models::learner_options::checkpointing;
  o.activation_checkpointing =
    t.activation_checkpointing == config::layer_checkpointing::on    ? mode::on
    : t.activation_checkpointing == config::layer_checkpointing::off ? mode::off
                                                                     : mode::auto_;
  o.gate.kappa = cfg.ped.kappa;
  o.gate.gamma = cfg.ped.gamma;
  o.gate.gating = cfg.ped.gating;
  return o;
}

models::spike_options spike_options_from(const config::config& cfg) {
  models::spike_options o;
  o.beta = cfg.ped.beta;
  o.lambda = cfg.ped.lambda;
  o.max_gap = cfg.ped.max_gap;
  o.temperature = cfg.ped.score_temperature;
  return o;
}

std::chrono::milliseconds request_timeout_of(const config::config& cfg) {
  return std::chrono::milliseconds(
    static_cast<int64_t>(std::ceil(cfg.cluster.request_timeout_s * 1000.0)));
}

void attach_prompt_renderer(classroom_setup& setup, const std::filesystem::path& model_dir) {
  auto tokenizer = std::make_shared<const models::tokenizer>(
    models::tokenizer::from_file(model_dir / "tokenizer.json"));
  auto format =
    std::make_shared<const models::chat_format>(models::chat_format::from_model_dir(model_dir));
  // As the generator renders a session's first request (generator_actor.cpp).
  setup.render_prompt = [tokenizer, format](const std::vector<models::chat_message>& messages) {
    return tokenizer->encode(format->render(messages, true));
  };
  setup.token_text = [tokenizer](int32_t id) {
    return tokenizer->decode({id});
  };
}

std::shared_ptr<const classroom_setup> make_classroom_setup(const config::config& cfg) {
  const auto& c = cfg.classroom;
  const bool rules = cfg.judge.backend == config::backend_kind::rule;
  auto s = std::make_shared<classroom_setup>();
  s->prompts = classroom::prompt_set::load(c.templates_dir, c.personas,
                                           rules ? std::vector<std::string>{} : c.judge_rules);
  s->limits.max_tutor_turns = c.max_tutor_turns;
  s->limits.max_tokens_in_conversation = c.max_tokens_in_conversation;
  s->limits.judge_rules = c.judge_rules;
  s->limits.judge_attempts = c.number_judge_attempts;
  s->limits.judge_parse_rounds = c.judge_parse_rounds;
  s->limits.unparsed_rejects = c.unparsed_verdict == config::verdict_policy::reject;
  s->limits.ignore_rejected_judge = c.ignore_rejected_judge;
  s->weights.rejection_penalty = c.rejection_penalty;
  s->weights.end_marker_bonus = cfg.reward.end_marker_bonus;
  s->weights.length_penalty = cfg.reward.length_penalty;
  s->weights.thinking_unbalanced_penalty = cfg.reward.thinking_unbalanced_penalty;
  s->weights.thinking_bonus = cfg.reward.thinking_bonus;
  s->weights.max_tokens_per_turn = c.max_tokens_per_turn;
  switch (cfg.reward.check) {
    case config::answer_check::math:
      s->check = classroom::answer_mode::math;
      break;
    case config::answer_check::exact:
      s->check = classroom::answer_mode::exact;
      break;
    case config::answer_check::none:
      break;
  }
  s->personas = c.personas;
  s->student_names = c.student_names;
  if (c.type == config::conversation_type::guided)
    s->forced_type = classroom::dialog_type::guided;
  else if (c.type == config::conversation_type::attempted)
    s->forced_type = classroom::dialog_type::attempted;
  s->scenario_seed = static_cast<uint64_t>(c.scenario_seed);
  s->use_thinking = c.use_thinking;
  s->force_thinking = c.force_thinking;
  s->rule_judge = rules;
  s->tutor = sampling_of(cfg.tutor);
  s->student = sampling_of(cfg.student);
  s->judge = sampling_of(cfg.judge);
  s->max_tokens_per_turn = c.max_tokens_per_turn;
  s->max_tokens_per_student_attempt = c.max_tokens_per_student_attempt;
  s->max_tokens_per_judge_attempt = c.max_tokens_per_judge_attempt;
  s->number_student_attempts = c.number_student_attempts;
  s->solver = cfg.ped.policy == config::ped_policy::solver;
  if (s->solver || cfg.ped.mode != config::ped_mode::off)
    s->ped = classroom::ped_prompts::load(c.templates_dir, s->solver ? "solver" : "tutor");
  s->request_timeout = request_timeout_of(cfg);
  return s;
}

} // namespace pedagogy::actors
