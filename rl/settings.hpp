// What the RL step's parts take from a config: the classroom's shared setup (templates parsed,
// limits, sampling), the learner's and the learnability scorer's options, and the request
// timeout. Pure functions of the config (they read the prompt templates and, for the prompt
// renderer, the tutor's tokenizer); nothing here spawns or loads a model.
#pragma once

#include "config/schema.hpp"
#include "models/learner/learner.hpp"
#include "rl/dialog.hpp"

#include <chrono>
#include <filesystem>
#include <memory>

namespace pedagogy::actors {

// Throws input_error for a missing or broken template.
std::shared_ptr<const classroom_setup> make_classroom_setup(const config::config& cfg);

// Gives `setup` the trained policy's chat format and tokenizer from `model_dir` (Pedagogical RL
// builds the ped_learner's view of ped_teacher dialogs with them). Throws input_error for a
// broken tokenizer or chat template.
void attach_prompt_renderer(classroom_setup& setup, const std::filesystem::path& model_dir);

// The learner's settings from [train] (and the tutor's sampling temperature); the schedule
// spans `rollout_steps` x mu optimizer steps.
models::learner_options learner_options_from(const config::config& cfg, int64_t rollout_steps);

// How the learner scores learnability for Pedagogical RL ([ped]).
models::spike_options spike_options_from(const config::config& cfg);

// cluster.request_timeout_s as a CAF request timeout.
std::chrono::milliseconds request_timeout_of(const config::config& cfg);

} // namespace pedagogy::actors
