// The trainer: the RL step loop in local mode (DESIGN §3). Each step picks problems in a seeded
// order, runs G dialogs per problem through the classroom, turns the tutor's sessions into
// training sequences with group advantages, lets the learner run GRPO, moves the new weights to
// the tutor generator through the weight channel, writes metrics (and dialogs), and checkpoints.
#pragma once

#include "actors/generator_actor.hpp"
#include "config/schema.hpp"

#include <caf/all.hpp>

#include <functional>
#include <string>

namespace pedagogy::actors {

struct train_options {
  bool resume = false; // continue from the newest checkpoint of the run
  // With resume: the checkpoint to continue from ("step-N", "N" or its folder); "" = the newest.
  std::string resume_from;
  bool force = false; // start over even if the run folder holds an earlier run
  // Tests and experiments: a student generator to use instead of the configured one (e.g. a
  // scripted student that makes the reward a known function of the tutor's words).
  std::function<generator_actor(caf::actor_system&)> make_student;
};

// Runs the job; returns the process exit code. Throws input_error for bad input (before any
// model loads where it can be known then).
int train(const config::config& cfg, const std::string& resolved_toml,
          const train_options& options);

} // namespace pedagogy::actors
