// `pedagogy rollout`: runs dialogs (problems x G samples) with the configured tutor, student and
// judges, and writes one record per dialog to a JSONL file as each finishes, with a progress
// line. The same classroom the trainer uses, without learning.
#pragma once

#include "config/schema.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace pedagogy::actors {

struct rollout_job_options {
  std::filesystem::path out; // the records' JSONL
  std::string problems;      // "" = the config's data.train
  int64_t limit = 0;         // 0 = data.max_problems
  int64_t samples = 0;       // 0 = train.samples_per_problem
  bool force = false;        // overwrite `out` (only a file of dialog records)
};

// Returns the exit code (0, 1 when every dialog failed, 128 + a signal); throws input_error for
// bad input before any model loads, and leaves an earlier `out` alone until the models loaded.
int rollout(const config::config& cfg, const rollout_job_options& options);

} // namespace pedagogy::actors
