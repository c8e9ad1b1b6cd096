// The trainer: the RL step loop in local mode (DESIGN §3). Each step picks problems in a seeded
// order, runs G dialogs per problem through the classroom, turns the tutor's sessions into
// training sequences with group advantages, lets the learner run GRPO, moves the new weights to
// the tutor generator through the weight channel, writes metrics (and dialogs), and checkpoints.
#pragma once

#include "config/schema.hpp"
#include "jobs/training_run.hpp"

#include <caf/all.hpp>

#include <functional>
#include <string>

namespace pedagogy::actors {

// Runs the job; returns the process exit code. Throws input_error for bad input (before any
// model loads where it can be known then).
int train(const config::config& cfg, const std::string& resolved_toml,
          const train_options& options);

} // namespace pedagogy::actors
