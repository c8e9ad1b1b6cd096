// The OpenAI-compatible generator (see openai_generator.hpp): a coordinating actor that queues
// requests and owns the sessions, and a detached worker per in-flight HTTP call, so blocking I/O
// never stalls CAF's scheduler and at most max_concurrency calls run at once.
#include "actors/openai_generator.hpp"

#include "models/serving/openai_http.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"
#include "runtime/process_info.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace pedagogy::actors {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

// An answer that is valid JSON but not a chat completion of n samples.
struct malformed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Tokens generated per sample, counted as the engine counts them (end-of-turn included when the
// sample stopped): the server's usage when it tells each sample's count (n = 1), else the role's
// tokenizer, else the usage shared out by text length (servers report only the sum over the n
// samples). False when nothing can count them.
bool count_tokens(std::vector<generated_text>& samples, const json& answer, int64_t max_new_tokens,
                  const models::tokenizer* tokenizer) {
  int64_t usage = -1;
  if (auto u = answer.find("usage"); u != answer.end() && u->is_object())
    if (auto c = u->find("completion_tokens"); c != u->end() && c->is_number_integer())
      usage = c->get<int64_t>();
  // A count no request of max_new_tokens (plus an end token) per sample can produce is not
  // trusted: it would reach the token budget and the length penalty as it stands.
  if (usage > (max_new_tokens + 1) * static_cast<int64_t>(samples.size()))
    usage = -1;
  if (usage >= 0 && samples.size() == 1) {
    samples[0].token_count = usage;
    return true;
  }
  if (tokenizer) {
    try {
      for (auto& s : samples)
        s.token_count = static_cast<int64_t>(tokenizer->encode(s.text).size()) +
                        (s.finish_reason == "stop" ? 1 : 0);
      return true;
    } catch (const input_error&) {
      // Text that is not UTF-8: the usage below, if any, still counts it.
    }
  }
  if (usage < 0)
    return false;
  int64_t chars = 0;
  for (const auto& s : samples)
    chars += static_cast<int64_t>(s.text.size());
  int64_t given = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const int64_t share = chars > 0 ? usage * static_cast<int64_t>(samples[i].text.size()) / chars
                                    : usage / static_cast<int64_t>(samples.size());
    samples[i].token_count = i + 1 == samples.size() ? usage - given : share;
    given += samples[i].token_count;
  }
  return true;
}

generate_reply parse_answer(const std::string& text, int64_t n, int64_t max_new_tokens,
                            const models::tokenizer* tokenizer, bool& counted) {
  const json answer = json::parse(text);
  const json& choices = answer.at("choices");
  if (!choices.is_array() || static_cast<int64_t>(choices.size()) != n)
    throw malformed(fmt::format("{} choices for n = {}{}", choices.size(), n,
                                n > 1 ? " (hint: the endpoint may not take n > 1)" : ""));
  generate_reply reply;
  for (const auto& choice : choices) {
    generated_text t;
    t.text = choice.at("message").at("content").get<std::string>();
    const json reason = choice.value("finish_reason", json("stop"));
    t.finish_reason = reason.is_string() && reason == "length" ? "length" : "stop";
    reply.completions.push_back(std::move(t));
  }
  counted = count_tokens(reply.completions, answer, max_new_tokens, tokenizer);
  return reply;
}

// The outcome of one call, with everything the coordinator needs to answer.
struct call_result {
  bool ok = false;
  generate_reply reply;
  std::string error;
  bool counted = true; // false: no usage and no tokenizer, the token counts are 0
};

// One blocking chat-completion call with retries, all within setup.timeout_s (runs in a detached
// worker), and its answer read.
call_result call(const openai_setup& setup, const models::http_endpoint& where,
                 const std::string& body, int64_t n, int64_t max_new_tokens,
                 const models::tokenizer* tokenizer) {
  models::post_options o;
  o.timeout_s = setup.timeout_s;
  o.connect_timeout_s = setup.connect_timeout_s;
  o.backoff_s = setup.backoff_s;
  o.max_retries = setup.max_retries;
  o.api_key_env = setup.api_key_env;
  o.role = setup.role;
  o.model = setup.model;
  o.base_url = setup.base_url;
  const auto posted = models::post_chat(where, body, o);
  if (!posted.ok)
    return {false, {}, posted.error};
  try {
    call_result result{true, {}, {}};
    result.reply = parse_answer(posted.body, n, max_new_tokens, tokenizer, result.counted);
    return result;
  } catch (const std::exception& e) { // json::exception or malformed
    return {false,
            {},
            fmt::format("unreadable answer from {}: {} (hint: {}.openai.base_url must be an "
                        "OpenAI-compatible server that answers /chat/completions with JSON)",
                        where.scheme_host_port + where.path, e.what(), setup.role)};
  }
}

struct queued {
  std::string body; // the JSON request
  int64_t n = 1;
  int64_t max_new_tokens = 1;
  caf::typed_response_promise<generate_reply> promise;
  // The session the call changes when it succeeds ("" = none: a one-off prompt or n > 1 branches of
  // a session), what it was sent, and the ticket that marks it busy.
  std::string session;
  std::vector<models::chat_message> dialog;
  uint64_t ticket = 0;
};

struct openai_state {
  openai_setup setup;
  models::http_endpoint where;
  std::shared_ptr<const models::tokenizer> tokenizer; // null = none
  std::map<std::string, std::vector<models::chat_message>>
    sessions; // the dialog so far, per session
  // Sessions with a call in flight that changes them, and that call's ticket: a session is changed
  // by one call at a time, and a close in between makes the answer change nothing.
  std::map<std::string, uint64_t> busy;
  uint64_t tickets = 0;
  std::deque<queued> waiting;
  int64_t in_flight = 0;
  int64_t answered = 0;
  bool warned_uncounted = false;
  static inline const char* name = "openai-generator";
};

using call_atom = caf::atom_constant<caf::atom("call")>;

// A detached worker: makes one blocking call (with its retries), answers, and stops.
caf::behavior call_worker(caf::event_based_actor* self, openai_setup setup,
                          models::http_endpoint where,
                          std::shared_ptr<const models::tokenizer> tokenizer) {
  return {[=](call_atom, const std::string& body, int64_t n, int64_t max_new_tokens) {
    call_result result = call(setup, where, body, n, max_new_tokens, tokenizer.get());
    self->quit();
    return caf::make_message(result.ok, result.error, std::move(result.reply), result.counted);
  }};
}

// The call for `job` is over: its session is free again. False when the session was closed while
// the call was in flight (or the call changes none), so its answer must not touch it.
bool release(openai_state& s, const queued& job) {
  auto busy = s.busy.find(job.session);
  if (job.session.empty() || busy == s.busy.end() || busy->second != job.ticket)
    return false;
  s.busy.erase(busy);
  return true;
}

void dispatch(generator_actor::stateful_pointer<openai_state> self) {
  auto& s = self->state;
  while (s.in_flight < s.setup.max_concurrency && !s.waiting.empty()) {
    auto job = std::make_shared<queued>(std::move(s.waiting.front()));
    s.waiting.pop_front();
    ++s.in_flight;
    auto worker = self->system().spawn<caf::detached>(call_worker, s.setup, s.where, s.tokenizer);
    // The worker keeps the call's own deadline (timeout_s); this one only guards against a
    // worker that never reports.
    const auto guard =
      std::chrono::milliseconds(static_cast<int64_t>(s.setup.timeout_s * 1000.0) + 30'000);
    self
      ->request(worker, caf::duration{guard}, call_atom::value, job->body, job->n,
                job->max_new_tokens)
      .then(
        [=](bool ok, const std::string& error, generate_reply& reply, bool counted) {
          auto& st = self->state;
          --st.in_flight;
          const bool owns_session = release(st, *job);
          if (ok) {
            ++st.answered;
            if (!counted && !st.warned_uncounted) {
              st.warned_uncounted = true;
              log::get(st.setup.role)
                ->warn("the endpoint reports no usage and no tokenizer is known: this role's turns "
                       "count 0 tokens, so the dialog token budget and the length penalty do not "
                       "see them (hint: point {}.model at the model's directory, with its "
                       "tokenizer.json, or use a server that reports usage)",
                       st.setup.role);
            }
            if (owns_session) {
              auto dialog = std::move(job->dialog);
              if (job->n == 1)
                dialog.push_back({"assistant", reply.completions.front().text});
              st.sessions[job->session] = std::move(dialog);
            }
            job->promise.deliver(std::move(reply));
          } else {
            log::get(st.setup.role)->warn("{}", error);
            job->promise.deliver(caf::make_error(
              caf::sec::runtime_error, fmt::format("{} generator: {}", st.setup.role, error)));
          }
          dispatch(self);
        },
        [=](caf::error& e) {
          auto& st = self->state;
          --st.in_flight;
          release(st, *job);
          job->promise.deliver(std::move(e));
          dispatch(self);
        });
  }
}

} // namespace

generator_actor spawn_openai_generator(caf::actor_system& system, const openai_setup& setup) {
  models::http_endpoint where = models::chat_completions_endpoint(setup.base_url, setup.role);
  if (setup.model.empty())
    throw input_error(setup.role + ".openai.model", "no model name for the endpoint",
                      "set the role's model (or openai.model) to the served model's name");
  std::shared_ptr<const models::tokenizer> tokenizer;
  if (!setup.tokenizer.empty())
    tokenizer =
      std::make_shared<const models::tokenizer>(models::tokenizer::from_file(setup.tokenizer));
  auto impl =
    [setup, where, tokenizer](
      generator_actor::stateful_pointer<openai_state> self) -> generator_actor::behavior_type {
    self->state.setup = setup;
    self->state.where = where;
    self->state.tokenizer = tokenizer;
    return {
      [=](generate_atom, const generate_request& r) -> caf::result<generate_reply> {
        auto& s = self->state;
        auto refuse = [&](const std::string& why) {
          return caf::make_error(caf::sec::invalid_argument,
                                 fmt::format("{} generator: {}", s.setup.role, why));
        };
        if (r.messages.empty())
          return refuse("an HTTP endpoint takes messages, not token ids");
        if (r.n < 1 || r.temperature < 0 || !(r.top_p > 0 && r.top_p <= 1) || r.max_new_tokens < 1)
          return refuse(fmt::format("invalid sampling (n {}, temperature {}, top_p {}, "
                                    "max_new_tokens {})",
                                    r.n, r.temperature, r.top_p, r.max_new_tokens));
        queued job;
        job.n = r.n;
        job.max_new_tokens = r.max_new_tokens;
        job.dialog = r.messages;
        if (!r.session.empty()) {
          auto it = s.sessions.find(r.session);
          // Opening a session, or one sample continuing it, changes it; n > 1 samples of a session
          // are branches that leave it as it is.
          const bool changes = r.open_session || r.n == 1;
          if (changes && s.busy.count(r.session) > 0)
            return refuse(fmt::format("session '{}' has a call in flight", r.session));
          if (r.open_session && it != s.sessions.end())
            return refuse(fmt::format("session '{}' exists", r.session));
          if (!r.open_session && it == s.sessions.end())
            return refuse(fmt::format("unknown session '{}'", r.session));
          if (!r.open_session)
            job.dialog.insert(job.dialog.begin(), it->second.begin(), it->second.end());
          if (changes) {
            job.session = r.session;
            job.ticket = ++s.tickets;
            s.busy[r.session] = job.ticket;
          }
        }
        json messages = json::array();
        for (const auto& t : job.dialog)
          messages.push_back({{"role", t.role}, {"content", t.content}});
        json body = {{"model", s.setup.model},
                     {"messages", messages},
                     {"n", r.n},
                     {"temperature", r.temperature},
                     {"top_p", r.top_p},
                     {"max_tokens", r.max_new_tokens},
                     {"seed", r.seed}};
        if (s.setup.send_top_k && r.top_k > 0)
          body["top_k"] = r.top_k;
        if (!r.stop_strings.empty())
          body["stop"] = r.stop_strings;
        // A turn cut off inside a multi-byte character is not UTF-8; JSON needs it to be.
        job.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
        job.promise = self->make_response_promise<generate_reply>();
        auto promise = job.promise;
        s.waiting.push_back(std::move(job));
        dispatch(self);
        return promise;
      },
      [=](close_atom, const std::string& session) -> caf::result<token_history> {
        auto& s = self->state;
        // A call in flight for the session changes nothing once it is closed.
        const bool known = s.sessions.erase(session) + s.busy.erase(session) > 0;
        if (!known)
          return caf::make_error(caf::sec::invalid_argument,
                                 fmt::format("unknown session '{}'", session));
        return token_history{}; // an HTTP endpoint has no token ids to return
      },
      [=](status_atom) -> generator_status {
        generator_status st;
        st.role = self->state.setup.role;
        st.running = self->state.in_flight;
        st.waiting = static_cast<int64_t>(self->state.waiting.size());
        st.sessions = static_cast<int64_t>(self->state.sessions.size());
        st.generated = self->state.answered;
        st.device = self->state.setup.base_url; // where its compute is
        st.host_memory = process_info::resident_bytes();
        return st;
      },
      [=](cancel_atom, const std::string&) {
        // A call in flight cannot be taken back; its answer is still delivered.
      },
      [=](weights_atom, int64_t) -> caf::result<int64_t> {
        return caf::make_error(caf::sec::invalid_argument,
                               "an OpenAI endpoint serves frozen weights");
      },
    };
  };
  return system.spawn(impl);
}

} // namespace pedagogy::actors
