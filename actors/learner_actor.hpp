// The learner actor: owns the trainable tutor (fp32 master weights), its optimizer and the frozen
// reference model, runs GRPO on rollout batches (its share of them, with data-parallel peers),
// offers its weights to the weight channel and writes checkpoints (the root learner only).
// Detached: a learn() blocks on compute.
#pragma once

#include "actors/protocol.hpp"
#include "models/learner/learner.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <filesystem>
#include <memory>

namespace pedagogy {
class weight_channel;
}

namespace pedagogy::actors {

struct learner_setup {
  std::filesystem::path model;  // the initial tutor (also the frozen reference)
  std::filesystem::path resume; // a checkpoint directory to continue from; "" = start
  std::string device = "cpu";
  models::learner_options options;
  // The learner root's channel to the tutor generators; null on the other learner ranks.
  std::shared_ptr<weight_channel> weights;
  // Data parallel: the sums across the learner ranks, and this learner's place among them. Each
  // learner is sent the whole rollout batch and trains on its share (step_batch's
  // learner_share); null = the only learner.
  std::shared_ptr<data_parallel> peers;
  int64_t index = 0;
  // How `score` measures learnability (Pedagogical RL's G).
  models::spike_options spike;
  // While a learn() runs, the learner reports its progress unasked, at most this often: its
  // status to whoever last asked for it (the inspector), and a learning_atom to the learn()'s
  // asker (the trainer's progress line).
  std::chrono::milliseconds heartbeat{1000};
};

// Loads policy (and reference when beta > 0), restores optimizer state when resuming (throws
// input_error for a broken checkpoint), and spawns the learner.
learner_actor spawn_learner(caf::actor_system& system, const learner_setup& setup);

} // namespace pedagogy::actors
