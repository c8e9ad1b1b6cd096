// Keeps a frozen role's generator alive (DESIGN §7, faults): the conversations talk to the
// supervisor, which forwards every message to the current generator; when that generator dies
// (an exception escaped a handler), the requests it held fail, their dialogs retry them (a
// one-off prompt succeeds on the new generator, a turn of a session the old one held fails its
// dialog with the reason: no dialog is lost silently), and a new generator is spawned in its
// place, up to `max_restarts` times. A request that arrives between the death and the
// supervisor hearing of it still reaches the dead generator and fails like the ones it held. The
// tutor is not supervised: its weights are the learner's latest version, which a new generator
// would not have; the job ends and --resume continues.
#pragma once

#include "actors/generator_actor.hpp"

#include <caf/all.hpp>

#include <functional>
#include <string>

namespace pedagogy::actors {

// `first` is the generator as spawned (so a broken model fails at spawn time); `make` spawns a
// replacement.
generator_actor spawn_generator_supervisor(caf::actor_system& system, std::string role,
                                           generator_actor first,
                                           std::function<generator_actor()> make,
                                           int max_restarts = 3);

} // namespace pedagogy::actors
