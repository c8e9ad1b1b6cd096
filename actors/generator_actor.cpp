// The generator actor (see generator_actor.hpp): turns messages into exact token ids, feeds the
// engine, steps it while there is work, and answers each request when its samples are done.
#include "actors/generator_actor.hpp"

#include "collectives/weight_channel.hpp"
#include "models/serving/engine.hpp"
#include "models/tensor/device.hpp"
#include "models/tensor/transformer.hpp"
#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"
#include "runtime/process_info.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>

namespace pedagogy::actors {

namespace {

// The engine's own tick: sent to itself while work is queued, one engine step per message, so
// requests that arrive meanwhile join the next step. Private: not part of generator_actor.
using step_atom = caf::atom_constant<caf::atom("step")>;
using engine_actor = generator_actor::extend<caf::reacts_to<step_atom>>;

// Model, tokenizer and chat format, loaded before the actor starts.
struct loaded_model {
  std::unique_ptr<models::transformer> model;
  std::unique_ptr<models::tokenizer> tokenizer;
  models::chat_format format = models::chat_format::chatml("");
  std::vector<int32_t> stop_ids; // the chat format's end-of-turn tokens
  int32_t end_of_turn = -1;
};

struct generator_state {
  std::string role;
  std::shared_ptr<loaded_model> loaded;
  std::unique_ptr<models::engine> engine;
  std::map<uint64_t, caf::typed_response_promise<generate_reply>> pending;
  std::map<std::string, uint64_t> in_flight;  // session -> engine request
  std::map<uint64_t, std::string> session_of; // engine request -> session
  std::map<std::string, bool> turn_closed;    // did the session's last turn end with its token?
  std::shared_ptr<weight_channel> weights;
  bool stepping = false;
  std::string device;           // for status reports
  int64_t kv_block_tokens = 16; // the engine's KV blocks, for status reports in tokens
  std::string last_error;       // the last failed step or refused request, for status reports
  static inline const char* name = "generator";
};

generated_text to_message(models::completion&& c, const std::vector<int32_t>& stop_ids) {
  // The engine checks stop tokens before stop strings, so a stop whose last id is a stop token
  // ended on it.
  const bool stop_token =
    c.reason == models::finish_reason::stop && !c.tokens.empty() &&
    std::find(stop_ids.begin(), stop_ids.end(), c.tokens.back()) != stop_ids.end();
  generated_text out{std::move(c.tokens), std::move(c.logprobs),       std::move(c.sampled),
                     std::move(c.text),   models::to_string(c.reason), c.weights_version};
  out.stop_token = stop_token;
  return out;
}

// The engine request for an actor request: the prompt as exact token ids.
models::generation_request to_engine_request(const generate_request& r, const generator_state& s) {
  const loaded_model& m = *s.loaded;
  models::generation_request out;
  out.session = r.session;
  out.mode = r.session.empty() ? models::session_mode::none
             : r.open_session  ? models::session_mode::open
                               : models::session_mode::resume;
  if (!r.messages.empty()) {
    const std::vector<models::chat_message>& messages = r.messages;
    std::string text;
    if (out.mode == models::session_mode::resume) {
      auto closed = s.turn_closed.find(r.session);
      text = m.format.continuation(messages, r.add_generation_prompt,
                                   closed == s.turn_closed.end() || closed->second);
    } else {
      text = m.format.render(messages, r.add_generation_prompt);
    }
    out.tokens = m.tokenizer->encode(text);
  } else {
    out.tokens = r.tokens;
  }
  auto& p = out.params;
  p.temperature = r.temperature;
  p.top_k = r.top_k;
  p.top_p = r.top_p;
  p.seed = r.seed;
  p.max_new_tokens = r.max_new_tokens;
  p.n = r.n;
  p.stop_strings = r.stop_strings;
  p.stop_token_ids = m.stop_ids;
  if (!r.forced_prefix.empty())
    p.forced_prefix = m.tokenizer->encode(r.forced_prefix);
  return out;
}

void schedule_step(engine_actor::stateful_pointer<generator_state> self) {
  if (!self->state.stepping && self->state.engine->has_work()) {
    self->state.stepping = true;
    self->send(self, step_atom::value);
  }
}

void step(engine_actor::stateful_pointer<generator_state> self) {
  auto& s = self->state;
  s.stepping = false;
  std::vector<models::generation_result> results;
  try {
    results = s.engine->step();
  } catch (const std::exception& e) {
    // A LibTorch failure (out of memory, a device error): every waiting requester hears of it.
    log::get(s.role)->error("engine step failed: {}", e.what());
    s.last_error = fmt::format("engine step failed: {}", e.what());
    for (auto& [id, promise] : s.pending)
      promise.deliver(caf::make_error(caf::sec::runtime_error, std::string(e.what())));
    s.pending.clear();
    s.in_flight.clear();
    s.session_of.clear();
    return;
  }
  for (auto& result : results) {
    auto promise = s.pending.find(result.id);
    if (auto session = s.session_of.find(result.id); session != s.session_of.end()) {
      // Only a single sample continues its session; n > 1 samples are branches.
      if (result.completions.size() == 1) {
        const auto& c = result.completions.front();
        s.turn_closed[session->second] = c.reason == models::finish_reason::stop &&
                                         !c.tokens.empty() &&
                                         c.tokens.back() == s.loaded->end_of_turn;
      }
      s.in_flight.erase(session->second);
      s.session_of.erase(session);
    }
    if (promise == s.pending.end())
      continue;
    generate_reply reply;
    for (auto& c : result.completions)
      reply.completions.push_back(to_message(std::move(c), s.loaded->stop_ids));
    promise->second.deliver(std::move(reply));
    s.pending.erase(promise);
  }
  schedule_step(self);
}

// What the engine is doing, for logs and live inspection.
generator_status status_of(const generator_state& s) {
  auto st = s.engine->stats();
  generator_status out;
  out.role = s.role;
  out.running = st.running;
  out.waiting = st.waiting;
  out.sessions = st.sessions;
  out.cached_tokens = st.cached_tokens;
  out.kv_held_tokens = st.kv_blocks_used * s.kv_block_tokens;
  out.kv_capacity = st.kv_blocks_total * s.kv_block_tokens; // whole blocks of the budget
  out.prefill_computed = st.prefill_computed;
  out.prefill_reused = st.prefill_reused;
  out.generated = st.generated;
  out.steps = st.steps;
  out.evictions = st.evictions;
  out.busy_seconds = st.busy_seconds;
  out.weights_version = s.engine->weights_version();
  out.device = s.device;
  out.host_memory = process_info::resident_bytes();
  out.device_memory = process_info::device_used_bytes(s.device);
  out.last_error = s.last_error;
  return out;
}

engine_actor::behavior_type generator_impl(engine_actor::stateful_pointer<generator_state> self,
                                           std::shared_ptr<loaded_model> loaded,
                                           models::engine_options options, std::string role,
                                           std::shared_ptr<weight_channel> weights,
                                           std::string device) {
  self->state.role = role;
  self->state.device = std::move(device);
  self->state.kv_block_tokens = options.kv_block_tokens;
  self->state.weights = std::move(weights);
  self->state.loaded = std::move(loaded);
  self->state.engine = std::make_unique<models::engine>(*self->state.loaded->model,
                                                        *self->state.loaded->tokenizer, options);
  return {
    [=](generate_atom, const generate_request& request) -> caf::result<generate_reply> {
      auto& s = self->state;
      uint64_t id = 0;
      try {
        id = s.engine->submit(to_engine_request(request, s));
      } catch (const input_error& e) {
        s.last_error = fmt::format("refused a request: {}", e.what());
        return caf::make_error(
          caf::sec::invalid_argument,
          fmt::format("{} generator: {} (hint: {})", s.role, e.what(), e.hint()));
      }
      if (!request.session.empty()) {
        s.in_flight[request.session] = id;
        s.session_of[id] = request.session;
      }
      auto promise = self->make_response_promise<generate_reply>();
      s.pending.emplace(id, promise);
      schedule_step(self);
      return promise;
    },
    [=](close_atom, const std::string& session) -> caf::result<token_history> {
      try {
        auto history = self->state.engine->close_session(session);
        self->state.turn_closed.erase(session);
        return history;
      } catch (const input_error& e) {
        return caf::make_error(caf::sec::invalid_argument, std::string(e.what()));
      }
    },
    [=](status_atom) { return status_of(self->state); },
    [=](cancel_atom, const std::string& session) {
      if (auto it = self->state.in_flight.find(session); it != self->state.in_flight.end())
        self->state.engine->cancel(it->second);
    },
    [=](weights_atom, int64_t version) -> caf::result<int64_t> {
      auto& s = self->state;
      if (!s.weights)
        return caf::make_error(caf::sec::invalid_argument,
                               s.role + " generator: no weight channel (a frozen role)");
      try {
        s.weights->take(s.loaded->model->named_parameters(), version);
      } catch (const std::exception& e) {
        s.last_error = fmt::format("taking weights v{} failed: {}", version, e.what());
        return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
      }
      s.engine->weights_updated(version);
      return version;
    },
    [=](step_atom) { step(self); },
  };
}

at::ScalarType parse_dtype(const std::string& dtype, const at::Device& device) {
  if (dtype == "auto")
    return device.is_cuda() ? at::kBFloat16 : at::kFloat;
  if (dtype == "float32")
    return at::kFloat;
  if (dtype == "bfloat16")
    return at::kBFloat16;
  throw input_error("generator setup", fmt::format("unknown dtype '{}'", dtype),
                    "use auto, float32 or bfloat16");
}

} // namespace

generator_actor spawn_generator(caf::actor_system& system, const generator_setup& setup) {
  auto loaded = std::make_shared<loaded_model>();
  const at::Device device = models::device_from_config(setup.device, setup.role + ".device");
  loaded->model = std::make_unique<models::transformer>(
    models::transformer::load(setup.model, device, parse_dtype(setup.dtype, device)));
  loaded->model->require_causal_lm(setup.model);
  loaded->tokenizer = std::make_unique<models::tokenizer>(
    models::tokenizer::from_file(setup.model / "tokenizer.json"));
  loaded->format = models::chat_format::from_model_dir(setup.model);
  for (const auto& token : loaded->format.stop_tokens())
    if (auto id = loaded->tokenizer->token_to_id(token))
      loaded->stop_ids.push_back(*id);
  if (auto id = loaded->tokenizer->token_to_id(loaded->format.end_of_turn()))
    loaded->end_of_turn = *id;
  models::engine_options options;
  options.max_context = setup.max_context;
  options.max_batch_sequences = setup.max_batch_sequences;
  options.max_batch_tokens = setup.max_batch_tokens;
  options.kv_cache_tokens = setup.kv_cache_tokens;
  options.kv_block_tokens = setup.kv_block_tokens;
  log::get(setup.role)
    ->info("generator ready: {} ({} parameters, {}, {})", setup.model.string(),
           loaded->model->config().parameter_count(), setup.device, setup.dtype);
  return system.spawn<caf::detached>(generator_impl, std::move(loaded), options, setup.role,
                                     setup.weights, device.str());
}

} // namespace pedagogy::actors
