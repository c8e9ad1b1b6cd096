// From a config to running parts: the classroom's shared setup (templates parsed, limits,
// sampling) and one generator per role (engine, OpenAI endpoint, or none for rule judges),
// creating random-init models first where a role asks for it (`init`).
#pragma once

#include "actors/rollout.hpp"
#include "config/schema.hpp"
#include "jobs/placement.hpp"
#include "rl/settings.hpp"

#include <caf/all.hpp>

#include <memory>

namespace pedagogy {
class weight_channel;
}

namespace pedagogy::actors {

// Message types, scheduler threads and (for distribution) the I/O module.
void configure_actor_system(caf::actor_system_config& system_config, const config::config& cfg,
                            bool with_middleman);

// Throws input_error (naming `<name>.model`, with a hint) unless the role's model folder holds a
// config.json or `init` may create one there. Loads and writes nothing.
void check_model_available(const config::role_config& role, const std::string& name);

// Creates the model of a role with `init` when its directory does not exist yet. Returns true
// when it wrote one.
bool ensure_model(const config::role_config& role, const std::string& name, uint64_t seed);

// The generator of one role as the config describes it (engine or OpenAI endpoint); a trained
// role (the tutor) also gets the weight channel its new weights come through.
generator_actor spawn_role_generator(caf::actor_system& system, const config::role_config& role,
                                     const std::string& name,
                                     std::shared_ptr<weight_channel> weights = nullptr);

// Tutor, student and judge (no judge actor when the judges are rules or judging is off).
role_generators spawn_role_generators(caf::actor_system& system, const config::config& cfg);

// Stops a generator and waits (up to a minute) until it is gone, so that its model's memory is
// free for the next and no timer of a request it made (an OpenAI call's guard) keeps the process
// alive after the work is done. A null handle is skipped.
void stop_generator(caf::actor_system& system, const generator_actor& generator);
void stop_generators(caf::actor_system& system, const role_generators& generators);

} // namespace pedagogy::actors
