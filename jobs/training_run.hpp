// The parts of a training job that local and multi-rank mode share (train_local.cpp and
// train_ranks.cpp): the job's options, deciding where a run starts, the learner's setup, the
// job's actors assembled for the trainer, and stopping them.
//
// One way to assemble the job's actors for both modes: each mode spawns its actors where they
// belong and lists them by role; assemble_job gives the trainer its view of them.
//
// A run is prepared on rank 0 only (the run folder, its locks, resume, the log file); the actors
// may live anywhere, the step loop only holds their handles.
#pragma once

#include "actors/trainer_actor.hpp"
#include "classroom/problems.hpp"
#include "config/schema.hpp"
#include "run/run_folder.hpp"
#include "runtime/ranks.hpp"

#include <caf/all.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

// A role's config on a rank: device "auto" is the rank's own (cuda:<local rank>, or cpu).
config::role_config on_rank(config::role_config role, const ranks::rank_info& rank);

// The learner's setup from the config: the tutor's model (or the checkpoint resumed from) on
// `device`, the options of a run of `total_steps`; the caller adds its channel and peers.
learner_setup learner_setup_from(const config::config& cfg, const std::filesystem::path& resume,
                                 const std::string& device, int64_t total_steps);

// The job's actors by role ("tutor", "student", "judge", "learner") and replica or learner index,
// and the rank each runs on (absent: rank 0).
struct role_actors {
  std::map<std::string, std::map<int, caf::actor>> by_role;
  std::map<std::pair<std::string, int>, int> rank_of;
};

// The trainer's view of `found`: learners and tutor replicas in index order, one generator handle
// per role for the conversations (the replica itself, or a session-affine router over several,
// added to `stop`), and every actor labelled for the inspector with the rank, node and device it
// runs on (`world`: every rank's rank_info, in rank order).
job_actors assemble_job(caf::actor_system& system, const config::config& cfg,
                        const role_actors& found, const std::vector<ranks::rank_info>& world,
                        actor_stopper& stop);

} // namespace pedagogy::actors
