// The toy task behind Pedagogical RL's learning test and `pedagogy bench ped` (setting B: the
// trained policy is a solver). Each problem asks for the code of an item ("Code of kqz?"); the
// answers are random three-digit numbers, so a policy that does not know them guesses right about
// once in a thousand tries and plain GRPO has nothing to learn from. The solver is a tiny model
// warmed up on other items to copy a code it sees in its system prompt into \boxed{}, and to be
// unsure (every code equally likely) when it sees none: the ped_teacher, which sees the answer,
// often succeeds; the ped_learner, which does not, must learn it.
//
// Everything is generated from a seed: problems, templates (the solver prompt is the problem
// alone, the privileged block the answer alone), and the model.
#pragma once

#include "actors/generator_actor.hpp"
#include "config/schema.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace pedagogy::bench {

struct recall_options {
  int64_t problems = 4;
  // Copy-skill SFT steps on other items, at most, per initialisation tried (it usually emerges
  // within 300); then a third as many with half the items' codes hidden.
  int64_t warmup_steps = 600;
  uint64_t seed = 1;
  std::string preset = "tiny";
  std::filesystem::path source_templates = "prompt_templates"; // the classroom's own templates
};

struct recall_task {
  std::filesystem::path problems;  // problems.jsonl
  std::filesystem::path templates; // a templates folder for classroom.templates_dir
  std::filesystem::path model;     // the warmed-up solver (a Hugging Face folder)
  double copy_loss = 0;            // the copy phase's mean loss per token over its last 10 steps
  int attempts = 0;                // initialisations tried for the copy skill to emerge
  double warmup_loss = 0;          // the last warm-up step's (half the items without their code)
};

// Writes the task under `dir` (created; an earlier task there is replaced).
recall_task make_recall_task(const std::filesystem::path& dir, const recall_options& options);

// How the learning test and `pedagogy bench ped` train on the task: `base` (the tiny preset) with
// the task's solver, problems and templates, `problems_per_step` x `samples` dialogs (and as many
// ped_teacher samples per problem), GRPO at 5e-3 with mu 2, ped.mode `mode`, and the gate
// midpoint and corpus settings the task needs. Run folder, steps and checkpoints are the caller's.
config::config recall_config(config::config base, const recall_task& task, config::ped_mode mode,
                             int64_t problems_per_step, int64_t samples);

// The solver never talks to a student: this one answers only the bookkeeping messages.
actors::generator_actor spawn_idle_student(caf::actor_system& system);

} // namespace pedagogy::bench
