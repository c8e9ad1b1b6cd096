// The router in front of several replicas of a role: a session's turns stay on the replica that
// holds its cache, new work goes to the replica with the fewest requests in flight, and status
// and weights reach every replica. The replicas are scripted: each answers with its own name,
// and holds a request back when its prompt says "hold" until it is told to let go.
#include "actors/protocol.hpp"
#include "actors/replica_router.hpp"
#include "tests/support/actor_system.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

using namespace pedagogy::actors;

namespace {

using release_atom = caf::atom_constant<caf::atom("release")>;

struct replica_state {
  std::string name;
  std::vector<caf::typed_response_promise<generate_reply>> held;
  int64_t version = 0;
};

// A generator that names itself in every reply; the extra `release` message answers what it
// holds (sent to the underlying actor, outside the typed protocol).
caf::behavior scripted_replica(caf::stateful_actor<replica_state>* self, std::string name) {
  self->state.name = name;
  auto answer = [=](const std::string& what) {
    generate_reply reply;
    generated_text text;
    text.text = self->state.name + ":" + what;
    text.finish_reason = "stop";
    reply.completions.push_back(text);
    return reply;
  };
  return {
    [=](generate_atom, const generate_request& r) -> caf::result<generate_reply> {
      const std::string what = r.messages.empty() ? std::string() : r.messages.front().content;
      if (what == "hold") {
        auto promise = self->make_response_promise<generate_reply>();
        self->state.held.push_back(promise);
        return promise;
      }
      return answer(what);
    },
    [=](close_atom, const std::string& session) {
      token_history h;
      h.tokens = {static_cast<int32_t>(self->state.name.size())};
      (void)session;
      return h;
    },
    [=](status_atom) {
      generator_status st;
      st.role = self->state.name;
      st.generated = 10;
      st.weights_version = self->state.version;
      return st;
    },
    [=](weights_atom, int64_t v) {
      self->state.version = v;
      return v;
    },
    [=](cancel_atom, const std::string&) {},
    [=](release_atom) {
      for (auto& p : self->state.held)
        p.deliver(answer("released"));
      self->state.held.clear();
    },
  };
}

// The router and two scripted replicas on a deterministic scheduler: every message the test
// causes runs before ask() returns, in the order the test wrote.
struct fixture : pedagogy::testing::deterministic_actor_system {
  std::vector<caf::actor> replicas;
  generator_actor router;

  fixture() {
    std::vector<generator_actor> typed;
    for (const char* name : {"a", "b"}) {
      replicas.push_back(system->spawn(scripted_replica, std::string(name)));
      typed.push_back(caf::actor_cast<generator_actor>(replicas.back()));
    }
    router = spawn_replica_router(*system, "tutor", typed, std::chrono::seconds(10));
  }
  ~fixture() {
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    for (auto& r : replicas)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
  }

  generate_request request(const std::string& session, bool open, const std::string& text) {
    generate_request r;
    r.session = session;
    r.open_session = open;
    r.messages.push_back({"user", text});
    return r;
  }

  using deterministic_actor_system::ask;
  // The reply's text ("<replica>:<prompt>"), "error: ...", or "no reply" while it is held.
  std::string ask(const generate_request& r) {
    return deterministic_actor_system::ask<generate_reply>(
      router, [](generate_reply& reply) { return reply.completions.front().text; },
      generate_atom::value, r);
  }
};

} // namespace

TEST_CASE("a session's later turns go to the replica that opened it") {
  fixture f;
  const auto first = f.ask(f.request("d1/tutor", true, "turn 1"));
  REQUIRE(first.size() > 2);
  const char replica = first.front();
  for (int turn = 2; turn <= 4; ++turn)
    CHECK(f.ask(f.request("d1/tutor", false, "turn " + std::to_string(turn))).front() == replica);
  CHECK(f.ask(f.request("never-opened", false, "x")).rfind("error:", 0) == 0);
}

TEST_CASE("new sessions and one-off prompts go to the replica with the fewest requests in flight") {
  fixture f;
  // A held request on whichever replica the first session lands on...
  const auto held = f.start<generate_reply>(
    f.router, [](generate_reply& reply) { return reply.completions.front().text; },
    generate_atom::value, f.request("busy", true, "hold"));
  CHECK(*held == "no reply");
  // ...sends every new session and one-off prompt to the other one while it is held.
  const auto other = f.ask(f.request("d2", true, "hi")).front();
  for (int i = 0; i < 3; ++i) {
    CHECK(f.ask(f.request("d" + std::to_string(3 + i), true, "hi")).front() == other);
    CHECK(f.ask(f.request("", false, "one-off")).front() == other);
  }
  for (auto& r : f.replicas)
    caf::anon_send(r, release_atom::value);
  f.run();
  REQUIRE(held->size() > 2);
  CHECK(held->front() != other);
  CHECK(held->substr(1) == ":released");
}

TEST_CASE("close goes to the holding replica, status sums and weights reach every replica") {
  fixture f;
  const auto first = f.ask(f.request("s", true, "hi"));
  REQUIRE(first.substr(1) == ":hi");
  auto tokens = [](token_history& h) {
    return std::to_string(h.tokens.size()) + ":" + std::to_string(h.tokens.front());
  };
  CHECK(f.ask<token_history>(f.router, tokens, close_atom::value, std::string("s")) ==
        "1:1"); // replica names are one letter
  CHECK(f.ask<token_history>(f.router, tokens, close_atom::value, std::string("s"))
          .rfind("error:", 0) == 0); // closed once only
  CHECK(f.ask<int64_t>(
          f.router, [](int64_t& v) { return std::to_string(v); }, weights_atom::value,
          int64_t{7}) == "7");
  auto describe = [](generator_status& s) {
    return s.role + " " + std::to_string(s.generated) + " v" + std::to_string(s.weights_version);
  };
  CHECK(f.ask<generator_status>(f.router, describe, status_atom::value) == "tutor 20 v7");
  for (const auto& replica : f.replicas)
    CHECK(f.ask<generator_status>(caf::actor_cast<generator_actor>(replica), describe,
                                  status_atom::value)
            .substr(2) == "10 v7");
}
