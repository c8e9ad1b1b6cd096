// The OpenAI-compatible generator (see openai_generator.hpp): a coordinating actor that queues
// requests and a detached worker per in-flight HTTP call, so blocking I/O never stalls CAF's
// scheduler and at most max_concurrency calls run at once.
#include "actors/openai_generator.hpp"

#include "runtime/errors.hpp"
#include "runtime/logging.hpp"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <deque>
#include <map>
#include <thread>

namespace pedagogy::actors {

namespace {

using json = nlohmann::json;

struct endpoint {
  std::string scheme_host_port; // "http://127.0.0.1:8000"
  std::string path;             // "/v1/chat/completions"
};

endpoint parse_url(const std::string& base_url, const std::string& role) {
  auto scheme_end = base_url.find("://");
  if (base_url.rfind("http://", 0) != 0 && base_url.rfind("https://", 0) != 0)
    throw input_error(role + ".openai.base_url",
                      fmt::format("'{}' is not an http(s) URL", base_url),
                      "write it as http://HOST:PORT/v1");
  auto path_start = base_url.find('/', scheme_end + 3);
  endpoint e;
  e.scheme_host_port = base_url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "" : base_url.substr(path_start);
  while (!path.empty() && path.back() == '/')
    path.pop_back();
  e.path = path + "/chat/completions";
  return e;
}

// The outcome of one call, with everything the coordinator needs to answer.
struct call_result {
  bool ok = false;
  generate_reply reply;
  std::string error;
};

// One blocking chat-completion call with retries (runs in a detached worker).
call_result call(const openai_setup& setup, const endpoint& where, const json& body) {
  std::string key;
  if (!setup.api_key_env.empty())
    if (const char* value = std::getenv(setup.api_key_env.c_str()))
      key = value;
  std::string last_error;
  double delay = setup.backoff_s;
  for (int64_t attempt = 0; attempt <= setup.max_retries; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(delay)); // retry backoff
      delay *= 2;
    }
    httplib::Client client(where.scheme_host_port);
    const auto timeout = std::chrono::duration<double>(setup.timeout_s);
    client.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    client.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    httplib::Headers headers;
    if (!key.empty())
      headers.emplace("Authorization", "Bearer " + key);
    auto response = client.Post(where.path, headers, body.dump(), "application/json");
    if (!response) {
      last_error = fmt::format("cannot reach {}{}: {}", where.scheme_host_port, where.path,
                               httplib::to_string(response.error()));
      continue; // connection problems are worth retrying
    }
    if (response->status == 429 || response->status >= 500) {
      last_error = fmt::format("HTTP {} from {}: {}", response->status, where.path,
                               response->body.substr(0, 200));
      continue;
    }
    if (response->status != 200)
      return {false,
              {},
              fmt::format("HTTP {} from {}: {}", response->status, where.path,
                          response->body.substr(0, 300))};
    try {
      json answer = json::parse(response->body);
      generate_reply reply;
      for (const auto& choice : answer.at("choices")) {
        generated_text t;
        t.text = choice.at("message").at("content").get<std::string>();
        t.finish_reason =
          choice.value("finish_reason", std::string("stop")) == "length" ? "length" : "stop";
        reply.completions.push_back(std::move(t));
      }
      return {true, std::move(reply), {}};
    } catch (const json::exception& e) {
      return {false, {}, fmt::format("unreadable answer from {}: {}", where.path, e.what())};
    }
  }
  return {false,
          {},
          fmt::format("{} (after {} attempts; hint: is the server running at {}?)", last_error,
                      setup.max_retries + 1, setup.base_url)};
}

struct queued {
  std::string body; // the JSON request
  caf::typed_response_promise<generate_reply> promise;
  std::string session; // its dialog gains the answer (n == 1 only)
};

struct openai_state {
  openai_setup setup;
  endpoint where;
  std::map<std::string, std::vector<chat_turn>> sessions; // the dialog so far, per session
  std::deque<queued> waiting;
  int64_t in_flight = 0;
  int64_t answered = 0;
  static inline const char* name = "openai-generator";
};

using call_atom = caf::atom_constant<caf::atom("call")>;

// A detached worker: makes one blocking call (with its retries), answers, and stops.
caf::behavior call_worker(caf::event_based_actor* self, openai_setup setup, endpoint where) {
  return {[=](call_atom, const std::string& body) {
    call_result result = call(setup, where, json::parse(body));
    self->quit();
    return caf::make_message(result.ok, result.error, std::move(result.reply));
  }};
}

void dispatch(generator_actor::stateful_pointer<openai_state> self) {
  auto& s = self->state;
  while (s.in_flight < s.setup.max_concurrency && !s.waiting.empty()) {
    auto job = std::make_shared<queued>(std::move(s.waiting.front()));
    s.waiting.pop_front();
    ++s.in_flight;
    auto worker = self->system().spawn<caf::detached>(call_worker, s.setup, s.where);
    self->request(worker, caf::infinite, call_atom::value, job->body)
      .then(
        [=](bool ok, const std::string& error, generate_reply& reply) {
          auto& st = self->state;
          --st.in_flight;
          if (ok) {
            ++st.answered;
            if (!job->session.empty())
              st.sessions[job->session].push_back({"assistant", reply.completions.at(0).text});
            job->promise.deliver(std::move(reply));
          } else {
            log::get(st.setup.role)->warn("{}", error);
            job->promise.deliver(caf::make_error(
              caf::sec::runtime_error, fmt::format("{} generator: {}", st.setup.role, error)));
          }
          dispatch(self);
        },
        [=](caf::error& e) {
          --self->state.in_flight;
          job->promise.deliver(std::move(e));
          dispatch(self);
        });
  }
}

} // namespace

generator_actor spawn_openai_generator(caf::actor_system& system, const openai_setup& setup) {
  endpoint where = parse_url(setup.base_url, setup.role);
  if (setup.model.empty())
    throw input_error(setup.role + ".openai.model", "no model name for the endpoint",
                      "set the role's model (or openai.model) to the served model's name");
  auto impl =
    [setup, where](
      generator_actor::stateful_pointer<openai_state> self) -> generator_actor::behavior_type {
    self->state.setup = setup;
    self->state.where = where;
    return {
      [=](generate_atom, const generate_request& r) -> caf::result<generate_reply> {
        auto& s = self->state;
        if (r.messages.empty())
          return caf::make_error(caf::sec::invalid_argument,
                                 s.setup.role +
                                   " generator: an HTTP endpoint takes messages, not token ids");
        if (r.n < 1 || r.temperature < 0 || !(r.top_p > 0 && r.top_p <= 1) || r.max_new_tokens < 1)
          return caf::make_error(
            caf::sec::invalid_argument,
            fmt::format("{} generator: invalid sampling (n {}, temperature {}, top_p {}, "
                        "max_new_tokens {})",
                        s.setup.role, r.n, r.temperature, r.top_p, r.max_new_tokens));
        std::vector<chat_turn> dialog = r.messages;
        if (!r.session.empty()) {
          auto it = s.sessions.find(r.session);
          if (r.open_session && it != s.sessions.end())
            return caf::make_error(
              caf::sec::invalid_argument,
              fmt::format("{} generator: session '{}' exists", s.setup.role, r.session));
          if (!r.open_session && it == s.sessions.end())
            return caf::make_error(
              caf::sec::invalid_argument,
              fmt::format("{} generator: unknown session '{}'", s.setup.role, r.session));
          auto& stored = s.sessions[r.session];
          stored.insert(stored.end(), r.messages.begin(), r.messages.end());
          dialog = stored;
        }
        json messages = json::array();
        for (const auto& t : dialog)
          messages.push_back({{"role", t.role}, {"content", t.content}});
        json body = {{"model", s.setup.model},
                     {"messages", messages},
                     {"n", r.n},
                     {"temperature", r.temperature},
                     {"top_p", r.top_p},
                     {"max_tokens", r.max_new_tokens},
                     {"seed", r.seed}};
        if (!r.stop_strings.empty())
          body["stop"] = r.stop_strings;
        auto promise = self->make_response_promise<generate_reply>();
        s.waiting.push_back({body.dump(), promise, r.n == 1 ? r.session : std::string{}});
        dispatch(self);
        return promise;
      },
      [=](close_atom, const std::string& session) -> caf::result<token_history> {
        if (self->state.sessions.erase(session) == 0)
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
        return st;
      },
      [=](cancel_atom, const std::string&) {
        // A call in flight cannot be taken back; its answer is still delivered.
      },
      [=](weights_atom, int64_t) -> caf::result<int64_t> {
        return caf::make_error(caf::sec::invalid_argument,
                               "an OpenAI endpoint serves frozen weights");
      },
      [=](step_atom) {},
    };
  };
  return system.spawn(impl);
}

} // namespace pedagogy::actors
