// Config to classroom setup and generators (see setup.hpp).
#include "jobs/setup.hpp"

#include "actors/generator_supervisor.hpp"
#include "actors/openai_generator.hpp"
#include "models/tensor/init_model.hpp"
#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"
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

void configure_actor_system(caf::actor_system_config& system_config, const config::config& cfg,
                            bool with_middleman) {
  add_message_types(system_config);
  if (cfg.cluster.scheduler_threads > 0)
    system_config.set("scheduler.max-threads", static_cast<size_t>(cfg.cluster.scheduler_threads));
  if (with_middleman)
    system_config.load<caf::io::middleman>();
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
