// A training run's folder: who may write into it, and what `--force` may delete.
//
// Only one run writes into a folder at a time (an advisory lock held for the run's lifetime, so
// a second run on the same folder refuses instead of deleting the first one's files under it).
// Starting over deletes only what a run of this program writes there, and refuses a folder that
// holds anything else: a mistyped `logging.run_dir` or `checkpoint.dir` must never empty a folder
// of the user's own files.
#pragma once

#include "classroom/problems.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace pedagogy::actors {

// Holds `<dir>/.pedagogy.lock` and the folder itself (flock) until destroyed. Throws input_error
// when another process holds either, naming that process when it can.
class run_lock {
public:
  explicit run_lock(const std::filesystem::path& dir);
  run_lock(const run_lock&) = delete;
  run_lock& operator=(const run_lock&) = delete;
  ~run_lock();

private:
  int fd_ = -1;     // the lock file
  int dir_fd_ = -1; // the folder, where it can be locked
};

// What a run writes into its folder, and what it finds there but must keep.
struct run_layout {
  std::filesystem::path run_dir;
  std::filesystem::path checkpoint_dir;
  // Model folders the run reads (and may have created, e.g. `tutor.init`): kept by --force.
  std::vector<std::filesystem::path> kept;
};

// The names of files and folders under the run's folders that are neither this program's
// outputs nor kept paths; empty when --force may go ahead.
std::vector<std::filesystem::path> foreign_entries(const run_layout& layout);

// Deletes the outputs of an earlier run (metrics, dialogs, log, config copy, checkpoints and
// their temporary files). Throws input_error, deleting nothing, when foreign_entries() is not
// empty.
void clear_run_outputs(const run_layout& layout);

// Keeps the lines of a JSONL file (metrics, dialogs) whose "step" is below `step`: a resumed run
// rewrites what came after its checkpoint. A partial last line never survives. Replaced
// atomically; an absent file stays absent.
void keep_steps_before(const std::filesystem::path& path, int64_t step);

// Throws input_error when a kept model folder lies inside the checkpoint folder: a run that
// starts there writes and prunes step-N folders, and would replace or delete the model it loads.
void refuse_models_in_checkpoints(const run_layout& layout);

// A regular file with something in it.
bool non_empty(const std::filesystem::path& path);

// Checkpoint folder names: step-000123 (and step-000123.tmp while one is being written).
bool is_checkpoint_name(const std::string& name);

// A run as rank 0 prepared it: its folders and their locks, its problems, and where it starts.
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

} // namespace pedagogy::actors
