// Session-affine, least-loaded routing over generator replicas (see replica_router.hpp).
#include "actors/replica_router.hpp"

#include "actors/ask_all.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>

namespace pedagogy::actors {

namespace {

struct router_state {
  std::string role;
  std::vector<generator_actor> replicas;
  std::vector<int64_t> in_flight;         // per replica
  std::map<std::string, size_t> sessions; // session -> replica holding its cache
  caf::duration timeout;
  static inline const char* name = "replica_router";

  size_t least_loaded() const {
    return static_cast<size_t>(std::min_element(in_flight.begin(), in_flight.end()) -
                               in_flight.begin());
  }
};

using router_pointer = generator_actor::stateful_pointer<router_state>;

// Replies once every replica answered `request`, folding their answers with `fold`.
template <class Answer, class Request, class Fold>
caf::result<Answer> ask_replicas(router_pointer self, Request request, Answer start, Fold fold) {
  auto promise = self->template make_response_promise<Answer>();
  auto total = std::make_shared<Answer>(std::move(start));
  const auto& replicas = self->state.replicas;
  ask_all<Answer>(
    replicas.size(), [=](size_t i) { return request(self->state.replicas[i]); },
    [=](size_t, Answer& answer) { fold(*total, answer); },
    [=]() mutable { promise.deliver(*total); },
    [=](size_t, caf::error& e) mutable { promise.deliver(std::move(e)); });
  return promise;
}

// A new session (or a one-off prompt) goes to the least loaded replica, a session's later turns
// to the replica that holds its cache.
caf::result<generate_reply> route_generate(router_pointer self, generate_request& r) {
  auto& s = self->state;
  size_t target = 0;
  if (r.session.empty() || r.open_session) {
    target = s.least_loaded();
    if (!r.session.empty())
      s.sessions[r.session] = target;
  } else {
    auto it = s.sessions.find(r.session);
    if (it == s.sessions.end())
      return caf::make_error(
        caf::sec::invalid_argument,
        fmt::format("{} router: session '{}' was never opened", s.role, r.session));
    target = it->second;
  }
  ++s.in_flight[target];
  auto promise = self->make_response_promise<generate_reply>();
  self->request(s.replicas[target], s.timeout, generate_atom::value, std::move(r))
    .then(
      [=](generate_reply& reply) mutable {
        --self->state.in_flight[target];
        promise.deliver(std::move(reply));
      },
      [=](caf::error& e) mutable {
        --self->state.in_flight[target];
        promise.deliver(std::move(e));
      });
  return promise;
}

// Every replica's status, summed.
caf::result<generator_status> summed_status(router_pointer self) {
  generator_status start;
  start.role = self->state.role;
  return ask_replicas<generator_status>(
    self,
    [=](const generator_actor& replica) {
      return self->request(replica, self->state.timeout, status_atom::value);
    },
    start,
    [](generator_status& total, const generator_status& one) {
      total.running += one.running;
      total.waiting += one.waiting;
      total.sessions += one.sessions;
      total.cached_tokens += one.cached_tokens;
      total.kv_held_tokens += one.kv_held_tokens;
      total.kv_capacity += one.kv_capacity;
      total.prefill_computed += one.prefill_computed;
      total.prefill_reused += one.prefill_reused;
      total.generated += one.generated;
      total.steps += one.steps;
      total.evictions += one.evictions;
      total.busy_seconds += one.busy_seconds;
      total.weights_version = one.weights_version;
    });
}

generator_actor::behavior_type router(router_pointer self, std::string role,
                                      std::vector<generator_actor> replicas,
                                      caf::duration timeout) {
  self->state.role = std::move(role);
  self->state.replicas = std::move(replicas);
  self->state.in_flight.assign(self->state.replicas.size(), 0);
  self->state.timeout = timeout;
  return {
    [=](generate_atom, generate_request& r) { return route_generate(self, r); },
    [=](close_atom, const std::string& session) -> caf::result<token_history> {
      auto& s = self->state;
      auto it = s.sessions.find(session);
      if (it == s.sessions.end())
        return caf::make_error(caf::sec::invalid_argument,
                               fmt::format("{} router: no session '{}'", s.role, session));
      const size_t target = it->second;
      s.sessions.erase(it);
      return self->delegate(s.replicas[target], close_atom::value, session);
    },
    [=](cancel_atom, const std::string& session) {
      auto& s = self->state;
      if (auto it = s.sessions.find(session); it != s.sessions.end())
        self->send(s.replicas[it->second], cancel_atom::value, session);
    },
    [=](status_atom) { return summed_status(self); },
    [=](weights_atom, int64_t version) -> caf::result<int64_t> {
      return ask_replicas<int64_t>(
        self,
        [=](const generator_actor& replica) {
          return self->request(replica, self->state.timeout, weights_atom::value, version);
        },
        version, [](int64_t&, int64_t) {});
    },
  };
}

} // namespace

generator_actor spawn_replica_router(caf::actor_system& system, std::string role,
                                     std::vector<generator_actor> replicas,
                                     std::chrono::milliseconds timeout) {
  return system.spawn(router, std::move(role), std::move(replicas), caf::duration{timeout});
}

} // namespace pedagogy::actors
