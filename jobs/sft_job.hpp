// `pedagogy sft`'s job, in one process and without actors: the run folder (lock, --force,
// --resume from the newest intact checkpoint), the chat data ([sft]), the optimizer-step loop of
// models/sft/sft.hpp with validation, metrics (<run_dir>/sft_metrics.jsonl), progress and
// checkpoints in the GRPO training's layout (run/checkpoints.hpp), and stopping cleanly on a
// signal.
//
// A run is replayable: the data order is a pure function of train.seed and the step
// (models/sft/sft_batches.hpp), so `--resume` continues from a checkpoint of step k exactly as the
// run that wrote it would have gone on.
#pragma once

#include "config/schema.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace pedagogy::actors {

struct sft_step_info {
  int64_t step = 0; // optimizer steps done, 1-based
  int64_t total_steps = 0;
  double loss = 0;
};

struct sft_run_options {
  bool resume = false; // continue from the newest intact checkpoint
  bool force = false;  // start over, deleting an earlier run's outputs
  // Called after every optimizer step (tests stop a run part-way with it); none by default.
  std::function<void(const sft_step_info&)> on_step;
};

struct sft_result {
  int exit_code = 0;      // 0, or 128 + the signal that stopped the run
  int64_t start_step = 0; // where it started (a resumed run: the checkpoint's step)
  int64_t steps_done = 0; // optimizer steps done in total
  int64_t total_steps = 0;
  double first_val_loss = -1; // before training (fresh runs) or at the first validation; -1 = none
  double last_val_loss = -1;  // the last validation; -1 = none
  std::filesystem::path checkpoint; // the newest checkpoint written ("" = none)
};

// Throws input_error for bad input (nothing deleted or written then), std::runtime_error for a
// failure during the run.
sft_result run_sft(const config::config& cfg, const std::string& resolved_toml,
                   const sft_run_options& options);

} // namespace pedagogy::actors
