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

struct fixture : pedagogy::testing::actor_system_fixture {
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

  // The reply's text ("<replica>:<prompt>"), or "error: ..." (bounded wait).
  std::string ask(const generate_request& r) {
    return pedagogy::testing::ask_text(*system, router, r);
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
  caf::scoped_actor self{*f.system};
  auto held = self->request(f.router, std::chrono::seconds(10), generate_atom::value,
                            f.request("busy", true, "hold"));
  // ...sends every new session and one-off prompt to the other one while it is held.
  const auto other = f.ask(f.request("d2", true, "hi")).front();
  for (int i = 0; i < 3; ++i) {
    CHECK(f.ask(f.request("d" + std::to_string(3 + i), true, "hi")).front() == other);
    CHECK(f.ask(f.request("", false, "one-off")).front() == other);
  }
  for (auto& r : f.replicas)
    caf::anon_send(r, release_atom::value);
  std::string released;
  held.receive([&](generate_reply& reply) { released = reply.completions.front().text; },
               [&](caf::error& e) { released = "error: " + f.system->render(e); });
  CHECK(released.front() != other);
  CHECK(released.substr(1) == ":released");
}

TEST_CASE("close goes to the holding replica, status sums and weights reach every replica") {
  fixture f;
  const auto first = f.ask(f.request("s", true, "hi"));
  caf::scoped_actor self{*f.system};
  token_history history;
  self->request(f.router, std::chrono::seconds(10), close_atom::value, std::string("s"))
    .receive([&](token_history& h) { history = h; }, [&](caf::error&) {});
  CHECK(history.tokens == std::vector<int32_t>{1}); // replica names are one letter
  self->request(f.router, std::chrono::seconds(10), close_atom::value, std::string("s"))
    .receive([&](token_history&) { FAIL("closed twice"); }, [&](caf::error&) {});
  int64_t version = -1;
  self->request(f.router, std::chrono::seconds(10), weights_atom::value, int64_t{7})
    .receive([&](int64_t v) { version = v; }, [&](caf::error&) {});
  CHECK(version == 7);
  generator_status status;
  self->request(f.router, std::chrono::seconds(10), status_atom::value)
    .receive([&](generator_status& s) { status = s; }, [&](caf::error&) {});
  CHECK(status.role == "tutor");
  CHECK(status.generated == 20);
  CHECK(status.weights_version == 7);
  for (const auto& replica : f.replicas) {
    int64_t seen = -1;
    self
      ->request(caf::actor_cast<generator_actor>(replica), std::chrono::seconds(10),
                status_atom::value)
      .receive([&](generator_status& s) { seen = s.weights_version; }, [&](caf::error&) {});
    CHECK(seen == 7);
  }
}
