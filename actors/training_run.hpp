// The parts of a training job that local and multi-rank mode share (used by trainer.cpp and
// cluster.cpp): deciding where a run starts, and the step loop over the job's actors.
//
// A run is prepared on rank 0 only (the run folder, its locks, resume, the log file); the actors
// may live anywhere, the step loop only holds their handles.
#pragma once

#include "actors/generator_actor.hpp"
#include "actors/learner_actor.hpp"
#include "actors/rollout.hpp"
#include "actors/run_folder.hpp"
#include "actors/trainer.hpp"
#include "classroom/problems.hpp"
#include "config/schema.hpp"

#include <caf/all.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pedagogy::actors {

struct prepared_run {
  std::filesystem::path run_dir;
  std::filesystem::path checkpoint_dir;
  std::unique_ptr<run_lock> lock;            // the run folder, for the run's lifetime
  std::unique_ptr<run_lock> checkpoint_lock; // checkpoint.dir when it lies elsewhere
  std::vector<classroom::problem> problems;
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;
  int64_t start_step = 0;
  std::filesystem::path resume_dir; // "" = a fresh start
};

// Stops the actors a job spawned on every way out, so that the actor system's destructor (which
// waits for all actors) cannot hang after an error.
struct actor_stopper {
  std::vector<caf::actor> actors;
  ~actor_stopper() {
    for (auto& a : actors)
      if (a)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
};

// Locks the run folder, decides what to continue from, loads the problems, clears an earlier
// run (--force), sets up the log file and writes config.toml. Throws input_error for bad input
// before any model loads.
prepared_run prepare_run(const config::config& cfg, const std::string& resolved_toml,
                         const train_options& options);

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

// Multi-rank mode (cluster.mode = "mpi", or "auto" under mpirun): every rank calls it.
int train_multi_rank(const config::config& cfg, const std::string& resolved_toml,
                     const train_options& options);

} // namespace pedagogy::actors
