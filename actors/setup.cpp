// Config to classroom setup and generators (see setup.hpp).
#include "actors/setup.hpp"

#include "actors/generator_supervisor.hpp"
#include "actors/openai_generator.hpp"
#include "models/chat_format.hpp"
#include "models/init_model.hpp"
#include "models/tokenizer.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"

#include <ATen/Context.h>
#include <caf/io/all.hpp>
#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <filesystem>

namespace pedagogy::actors {

namespace {

role_sampling sampling_of(const config::role_config& role) {
  return {role.sampling.temperature, role.sampling.top_k, role.sampling.top_p};
}

// Whether `model` reads as a Hugging Face hub id ("Qwen/Qwen2.5-0.5B-Instruct"): exactly two
// relative path components of the characters the hub allows.
bool looks_like_hub_id(const std::string& model) {
  const auto slash = model.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == model.size() ||
      model.find('/', slash + 1) != std::string::npos)
    return false;
  for (char c : model)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != '/')
      return false;
  const std::string org = model.substr(0, slash), name = model.substr(slash + 1);
  return org != "." && org != ".." && name != "." && name != "..";
}

// How to get the model of `role` (e.g. "tutor") that is not on disk at `model`.
std::string missing_model_hint(const std::string& role, const std::string& model) {
  if (!looks_like_hub_id(model))
    return fmt::format("point {}.model at a Hugging Face model folder, or set {}.init = "
                       "\"qwen2:tiny\" to create a random one there",
                       role, role);
  const std::string name = model.substr(model.find('/') + 1);
  if (model.starts_with("weights/")) // where the presets expect downloads
    return fmt::format("download it there: huggingface-cli download ORG/{} --local-dir {} (ORG: "
                       "its publisher on huggingface.co, e.g. Qwen)",
                       name, model);
  return fmt::format("download it first: huggingface-cli download {} --local-dir weights/{}, "
                     "then set {}.model=weights/{}",
                     model, name, role, name);
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

std::chrono::milliseconds request_timeout_of(const config::config& cfg) {
  return std::chrono::milliseconds(
    static_cast<int64_t>(std::ceil(cfg.cluster.request_timeout_s * 1000.0)));
}

rollout_options rollout_options_from(const config::config& cfg) {
  rollout_options o;
  o.max_in_flight = cfg.classroom.max_dialogs_in_flight;
  if (o.max_in_flight == 0) {
    const auto& tutor = cfg.tutor;
    o.max_in_flight =
      2 * (tutor.backend == config::backend_kind::openai ? tutor.openai.max_concurrency
                                                         : tutor.max_batch_sequences);
  }
  return o;
}

void configure_actor_system(caf::actor_system_config& system_config, const config::config& cfg,
                            bool with_middleman) {
  add_message_types(system_config);
  if (cfg.cluster.scheduler_threads > 0)
    system_config.set("scheduler.max-threads", static_cast<size_t>(cfg.cluster.scheduler_threads));
  if (with_middleman)
    system_config.load<caf::io::middleman>();
}

models::spike_options spike_options_from(const config::config& cfg) {
  models::spike_options o;
  o.beta = cfg.ped.beta;
  o.lambda = cfg.ped.lambda;
  o.max_gap = cfg.ped.max_gap;
  o.temperature = cfg.ped.score_temperature;
  return o;
}

void attach_prompt_renderer(classroom_setup& setup, const std::filesystem::path& model_dir) {
  auto tokenizer = std::make_shared<const models::tokenizer>(
    models::tokenizer::from_file(model_dir / "tokenizer.json"));
  auto format =
    std::make_shared<const models::chat_format>(models::chat_format::from_model_dir(model_dir));
  // As the generator renders a session's first request (generator_actor.cpp).
  setup.render_prompt = [tokenizer, format](const std::vector<chat_turn>& turns) {
    std::vector<models::chat_message> messages;
    for (const auto& t : turns)
      messages.push_back({t.role, t.content});
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

void check_model_available(const config::role_config& role, const std::string& name) {
  if (role.backend != config::backend_kind::engine ||
      std::filesystem::exists(std::filesystem::path(role.model) / "config.json"))
    return;
  if (role.init.empty())
    throw input_error(fmt::format("{}.model", name),
                      fmt::format("'{}' is not a model directory (no config.json)", role.model),
                      missing_model_hint(name, role.model));
  // `init` stays set when an override points `model` elsewhere: a hub id must not quietly become
  // a random model (of whatever family the preset names) in a folder of that name.
  if (looks_like_hub_id(role.model))
    throw input_error(
      name + ".model",
      fmt::format("'{}' is not a model folder here, and {}.init never creates a random model at a "
                  "path that reads as org/name (a Hugging Face hub id, or a download folder "
                  "weights/NAME); it does at deeper paths such as runs/NAME/weights/{}",
                  role.model, name, name),
      missing_model_hint(name, role.model));
}

bool ensure_model(const config::role_config& role, const std::string& name, uint64_t seed) {
  const std::filesystem::path dir = role.model;
  if (role.init.empty() || std::filesystem::exists(dir / "config.json"))
    return false;
  check_model_available(role, name);
  const auto colon = role.init.find(':');
  models::init_options options;
  options.family = models::family_from_name(role.init.substr(0, colon), name + ".init");
  options.preset = role.init.substr(colon + 1);
  options.seed = seed;
  options.out = dir;
  options.force = std::filesystem::exists(dir); // an empty or half-written folder
  auto made = models::init_model(options);
  log::get("setup")->info("{}: created a random-init {} model in {} ({:.2f}M parameters, seed {})",
                          name, role.init, dir.string(),
                          static_cast<double>(made.parameter_count()) / 1e6, seed);
  return true;
}

generator_actor spawn_role_generator(caf::actor_system& system, const config::role_config& role,
                                     const std::string& name,
                                     std::shared_ptr<weight_channel> weights) {
  if (role.backend == config::backend_kind::openai) {
    openai_setup o;
    o.role = name;
    o.base_url = role.openai.base_url;
    o.model = role.openai.model.empty() ? role.model : role.openai.model;
    o.api_key_env = role.openai.api_key_env;
    o.max_concurrency = role.openai.max_concurrency;
    o.timeout_s = role.openai.timeout_s;
    o.max_retries = role.openai.max_retries;
    o.send_top_k = role.openai.send_top_k;
    // Counts tokens when the server reports no usage; `model` may be just the served name.
    const auto tokenizer = std::filesystem::path(role.model) / "tokenizer.json";
    if (std::error_code ec; std::filesystem::exists(tokenizer, ec))
      o.tokenizer = tokenizer;
    return spawn_openai_generator(system, o);
  }
  PEDAGOGY_CHECK(role.backend == config::backend_kind::engine, "{} has no model backend", name);
  generator_setup g;
  g.role = name;
  g.model = role.model;
  g.device = role.device;
  switch (role.dtype) {
    case config::dtype_kind::auto_:
      g.dtype = "auto";
      break;
    case config::dtype_kind::float32:
      g.dtype = "float32";
      break;
    case config::dtype_kind::bfloat16:
      g.dtype = "bfloat16";
      break;
  }
  g.weights = std::move(weights);
  g.max_context = role.max_context;
  g.max_batch_sequences = role.max_batch_sequences;
  g.kv_cache_tokens = role.kv_budget();
  g.kv_block_tokens = role.kv_block_tokens;
  if (!std::filesystem::exists(std::filesystem::path(role.model) / "config.json"))
    throw input_error(fmt::format("{}.model", name),
                      fmt::format("'{}' is not a model directory (no config.json)", role.model),
                      missing_model_hint(name, role.model));
  auto first = spawn_generator(system, g);
  if (name == "tutor")
    return first; // its weights are the learner's: a crash ends the job, --resume continues
  return spawn_generator_supervisor(system, name, first,
                                    [&system, g] { return spawn_generator(system, g); });
}

void stop_generator(caf::actor_system& system, const generator_actor& generator) {
  if (!generator)
    return;
  caf::scoped_actor self{system};
  self->monitor(generator);
  caf::anon_send_exit(generator, caf::exit_reason::user_shutdown);
  bool gone = false;
  self->receive([&](caf::down_msg&) { gone = true; },
                caf::after(std::chrono::seconds(60)) >> [] {});
  if (!gone)
    log::get("setup")->warn("a generator did not stop within 60 s; going on");
}

void stop_generators(caf::actor_system& system, const role_generators& generators) {
  for (const auto* g : {&generators.tutor, &generators.student, &generators.judge})
    stop_generator(system, *g);
}

role_generators spawn_role_generators(caf::actor_system& system, const config::config& cfg) {
  const auto seed = static_cast<uint64_t>(cfg.train.seed);
  ensure_model(cfg.tutor, "tutor", seed);
  ensure_model(cfg.student, "student", seed + 1);
  role_generators g;
  g.tutor = spawn_role_generator(system, cfg.tutor, "tutor");
  g.student = spawn_role_generator(system, cfg.student, "student");
  if (needs_judge_generator(cfg)) {
    ensure_model(cfg.judge, "judge", seed + 2);
    g.judge = spawn_role_generator(system, cfg.judge, "judge");
  }
  return g;
}

} // namespace pedagogy::actors
