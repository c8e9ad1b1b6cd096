// An actor system for one test, with the protocol's message types announced: with real threads
// (optionally bounded), or deterministic (CAF's test coordinator: nothing runs until the test
// calls run(), which processes every queued message on the test's thread, in order). And ways to
// ask an actor for one answer: bounded by a timeout with threads, or within one run().
#pragma once

#include "actors/protocol.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace pedagogy::testing {

struct actor_system_fixture {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;

  // `threads` > 0 caps the scheduler's threads (0 = CAF's default, one per core).
  explicit actor_system_fixture(size_t threads = 0) {
    actors::add_message_types(config);
    if (threads > 0)
      config.set("scheduler.max-threads", threads);
    system = std::make_unique<caf::actor_system>(config);
  }
};

// The first sample's text of `generator`'s answer to `request`, "error: <reason>" when it fails,
// or "no reply" (within `timeout`).
inline std::string ask_text(caf::actor_system& system, const actors::generator_actor& generator,
                            const actors::generate_request& request,
                            std::chrono::seconds timeout = std::chrono::seconds(10)) {
  std::string out = "no reply";
  caf::scoped_actor self{system};
  self->request(generator, timeout, actors::generate_atom::value, request)
    .receive([&](actors::generate_reply& reply) { out = reply.completions.front().text; },
             [&](caf::error& e) { out = "error: " + system.render(e); });
  return out;
}

// An actor system that runs no thread of its own: a test sends, calls run(), and reads what came
// back, so every interleaving is the one the test wrote (no timing, no sleeping). Request
// timeouts never fire: the coordinator's clock stands still.
struct deterministic_actor_system {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  caf::scheduler::test_coordinator* scheduler = nullptr;

  deterministic_actor_system() {
    actors::add_message_types(config);
    config.set("scheduler.policy", caf::atom("testing"));
    config.set("logger.file-verbosity", caf::atom("quiet"));
    system = std::make_unique<caf::actor_system>(config);
    scheduler = &dynamic_cast<caf::scheduler::test_coordinator&>(system->scheduler());
  }
  ~deterministic_actor_system() {
    run(); // let exit messages and the last replies through before the system goes
  }

  // Processes queued messages until none is left; returns how many ran.
  size_t run() {
    return scheduler->run();
  }

  // Sends `xs...` to `to` from a client actor and runs every message that follows. The text it
  // returns reads the answer (`on_answer` turns it into text), "error: <reason>", or "no reply"
  // while none came (a request still held: a later run() may fill it in).
  template <class Answer, class Handle, class... Ts>
  std::shared_ptr<const std::string>
  start(const Handle& to, std::function<std::string(Answer&)> on_answer, Ts... xs) {
    auto out = std::make_shared<std::string>("no reply");
    auto sys = system.get();
    system->spawn([=](caf::event_based_actor* self) {
      self->request(to, caf::infinite, xs...)
        .then([=](Answer& answer) { *out = on_answer(answer); },
              [=](caf::error& e) { *out = "error: " + sys->render(e); });
    });
    run();
    return out;
  }

  // As start(), the text as it stands once every message has run.
  template <class Answer, class Handle, class... Ts>
  std::string ask(const Handle& to, std::function<std::string(Answer&)> on_answer, Ts... xs) {
    return *start<Answer>(to, std::move(on_answer), xs...);
  }
};

} // namespace pedagogy::testing
