// The trainer actor (DESIGN §3): the step loop over a job's actors, wherever they live. Its
// phases (rolling out, learning, syncing, checkpointing) are its states; local and multi-rank
// mode assemble the actors (jobs/) and hand them here.
#pragma once

#include "actors/generator_actor.hpp"
#include "actors/learner_actor.hpp"
#include "actors/protocol.hpp"
#include "actors/rollout.hpp"
#include "config/schema.hpp"
#include "run/run_folder.hpp"

#include <caf/all.hpp>

#include <string>
#include <vector>

namespace pedagogy::actors {

// The job's actors as the trainer sees them (local handles or proxies of remote ones).
struct job_actors {
  role_generators generators;          // what the conversations talk to
  std::vector<generator_actor> tutors; // every tutor replica: each takes the new weights
  std::vector<learner_actor> learners; // data-parallel learners; [0] is the root
  // Pedagogical RL (ped.mode != "off"): the ped_teacher's generator, the tutor's model with the
  // answer in view. rescue and mix keep it at the tutor's initial weights (a fixed privileged
  // sampler); rounds trains it with its own learner (its own parameters and optimizer,
  // initialised from the tutor), which sends it new weights after each of its steps.
  generator_actor ped_teacher_generator;
  learner_actor ped_teacher; // rounds only
  // What the inspector watches: every generator replica and learner, with its rank, node and
  // device as the job placed it (local handles or proxies).
  std::vector<inspected_actor> inspected;
};

// The step loop (the trainer actor): rollouts, learning, weight sync, checkpoints, metrics; and,
// with inspect.enabled, the inspector and its HTTP server on this rank for the run's lifetime
// (and inspect.linger_s after it).
// Returns the exit code: 0, or 128 + the signal that stopped the job once everything is on disk.
// Throws what ended the job otherwise.
int run_steps(caf::actor_system& system, const config::config& cfg,
              const std::string& resolved_toml, prepared_run& run, const job_actors& actors);

} // namespace pedagogy::actors
