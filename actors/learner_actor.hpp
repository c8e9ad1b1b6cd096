// The learner actor: owns the trainable tutor (fp32 master weights), its optimizer and the frozen
// reference model, runs GRPO on rollout batches (its share of them, with data-parallel peers),
// offers its weights to the weight channel and writes checkpoints (the root learner only).
// Detached: a learn() blocks on compute.
#pragma once

#include "actors/messages.hpp"
#include "models/learner.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <filesystem>
#include <memory>

namespace pedagogy {
class weight_channel;
}

namespace pedagogy::actors {

using learn_atom = caf::atom_constant<caf::atom("learn")>;
using publish_atom = caf::atom_constant<caf::atom("publish")>;
using save_atom = caf::atom_constant<caf::atom("save")>;
using score_atom = caf::atom_constant<caf::atom("score")>;
// (learning, done, total): a learn()'s micro-batches so far, sent unasked to its asker.
using learning_atom = caf::atom_constant<caf::atom("learning")>;

// learn: GRPO (and gated imitation) on a rollout batch; publish: offer the weights as version v;
// save: write a checkpoint folder; score: Pedagogical RL's learnability of each sequence under the
// current weights (no update).
using learner_actor =
  caf::typed_actor<caf::replies_to<learn_atom, rollout_batch>::with<models::learn_report>,
                   caf::replies_to<score_atom, rollout_batch>::with<std::vector<models::ped_score>>,
                   caf::replies_to<publish_atom, int64_t>::with<int64_t>,
                   caf::replies_to<save_atom, std::string>::with<int64_t>,
                   caf::replies_to<status_atom>::with<learner_status>>;

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
  std::shared_ptr<models::data_parallel> peers;
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
