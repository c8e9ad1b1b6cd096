// What one training step reports: the metrics.jsonl line (every scalar a person or a plotting
// script reads, named as in the README) and the progress line of the log. Pure: no I/O.
#pragma once

#include "actors/ped_step.hpp"
#include "actors/step_batch.hpp"
#include "models/learn_report.hpp"

#include <cstdint>
#include <string>

namespace pedagogy::actors {

struct step_timings {
  double rollout_s = 0;      // the step's dialogs, start to last record
  double rollout_wait_s = 0; // what the step waited for them (less when they overlapped learning)
  double learn_s = 0;
  double sync_s = 0;
  double checkpoint_s = 0;
  double step_s = 0;
};

struct step_identity {
  int64_t step = 0; // 0-based, as in the records
  int64_t epoch = 0;
  int64_t weights_version = 0; // after this step's update
};

// Pedagogical RL's part of a step's metrics (ped.mode != "off").
struct ped_step_metrics {
  ped_stats stats;
  models::learn_report teacher; // rounds: the ped_teacher's update (empty otherwise)
};

// One line of metrics.jsonl (JSON, no newline); with `ped`, a "ped" object too.
std::string metrics_line(const step_identity& id, const step_stats& stats,
                         const models::learn_report& report, const step_timings& time,
                         const ped_step_metrics* ped = nullptr);

// "step 3/40 | reward +0.125 | solve 0.50 | ...", 1-based like a person counts.
std::string progress_line(int64_t step, int64_t total_steps, const step_stats& stats,
                          const models::learn_report& report, const step_timings& time);

} // namespace pedagogy::actors
