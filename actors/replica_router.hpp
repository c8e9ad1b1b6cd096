// Several replicas of one role behind one generator handle (DESIGN §7): the conversations talk
// to the router as to any generator. A new session goes to the replica with the fewest requests
// in flight; every later turn of that session goes to the same replica (it holds the session's
// KV cache), and so do its cancel and close. One-off prompts go to the least loaded replica.
// Status and weight updates go to every replica (status is their sum).
#pragma once

#include "actors/generator_actor.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace pedagogy::actors {

// `replicas` must not be empty; `timeout` bounds every forwarded request.
generator_actor spawn_replica_router(caf::actor_system& system, std::string role,
                                     std::vector<generator_actor> replicas,
                                     std::chrono::milliseconds timeout);

} // namespace pedagogy::actors
