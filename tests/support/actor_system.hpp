// An actor system for one test, with the protocol's message types announced (and, optionally,
// a bounded scheduler), and a bounded way to ask a generator for one sample's text.
#pragma once

#include "actors/protocol.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <cstddef>
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

} // namespace pedagogy::testing
