// A frozen role's generator that dies is replaced: the request it was serving fails (so its
// dialog retries or records the reason), the next request reaches a new generator, and after
// max_restarts deaths the supervisor gives up instead of restarting forever.
#include "actors/generator_supervisor.hpp"
#include "actors/protocol.hpp"
#include "tests/support/actor_system.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

using namespace pedagogy::actors;

namespace {

// Answers "<incarnation>:<prompt>"; a prompt "crash" throws out of the handler, which kills it.
generator_actor::behavior_type scripted(generator_actor::pointer, int incarnation) {
  return {
    [=](generate_atom, const generate_request& r) -> generate_reply {
      const auto prompt = r.messages.front().content;
      if (prompt == "crash")
        throw std::runtime_error("a bug in the generator");
      generated_text text;
      text.text = std::to_string(incarnation) + ":" + prompt;
      generate_reply reply;
      reply.completions.push_back(text);
      return reply;
    },
    [](close_atom, const std::string&) { return token_history{}; },
    [](status_atom) { return generator_status{}; },
    [](weights_atom, int64_t v) { return v; },
    [](cancel_atom, const std::string&) {},
  };
}

struct fixture : pedagogy::testing::actor_system_fixture {
  std::shared_ptr<std::atomic<int>> spawned = std::make_shared<std::atomic<int>>(0);
  generator_actor first; // the generator the supervisor starts with
  generator_actor supervisor;

  explicit fixture(int max_restarts) {
    auto make = [this, counter = spawned] {
      return system->spawn(scripted, ++*counter);
    };
    first = make();
    supervisor = spawn_generator_supervisor(*system, "student", first, make, max_restarts);
  }
  ~fixture() {
    caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
  }

  std::string ask(const std::string& prompt) {
    generate_request r;
    r.messages.push_back({"user", prompt});
    const auto out = pedagogy::testing::ask_text(*system, supervisor, r);
    return out.rfind("error", 0) == 0 ? "error" : out;
  }

  // As a dialog asks after a failure: up to 3 tries (classroom's 2 retries). A request that
  // reaches the supervisor between its generator's death and the news of it still goes to the
  // dead one and fails; the next goes to the replacement.
  // Waits (at most 10 s) until the supervisor has spawned `n` generators in all.
  bool spawned_at_least(int n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (spawned->load() < n && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    return spawned->load() >= n;
  }

  std::string ask_again(const std::string& prompt) {
    std::string out;
    for (int attempt = 0; attempt < 3 && (out.empty() || out == "error"); ++attempt)
      out = ask(prompt);
    return out;
  }
};

} // namespace

TEST_CASE("a generator that dies is replaced and the request it held fails") {
  fixture f(3);
  CHECK(f.ask("hello") == "1:hello");
  CHECK(f.ask("crash") == "error");
  REQUIRE(f.spawned_at_least(2));
  CHECK(f.ask_again("hello") == "2:hello");
  CHECK(f.ask("again") == "2:again");
  CHECK(f.spawned->load() == 2);
}

TEST_CASE("after max_restarts deaths the supervisor gives up") {
  fixture f(1);
  CHECK(f.ask("crash") == "error");
  REQUIRE(f.spawned_at_least(2));
  CHECK(f.ask_again("hello") == "2:hello");
  CHECK(f.ask("crash") == "error");
  // No third generator: the supervisor is gone and so is every later request.
  CHECK(f.ask_again("hello") == "error");
  CHECK(f.spawned->load() == 2);
}

TEST_CASE("stopping the supervisor stops its generator") {
  fixture f(3);
  CHECK(f.ask("hello") == "1:hello");
  caf::scoped_actor self{*f.system};
  self->monitor(f.first);
  caf::anon_send_exit(f.supervisor, caf::exit_reason::user_shutdown);
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; },
                caf::after(std::chrono::seconds(10)) >> [] {});
  CHECK(down);
  CHECK(f.ask("hello") == "error");
}
