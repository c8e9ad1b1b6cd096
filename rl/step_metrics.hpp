// What one training step reports: the metrics.jsonl line (every scalar a person or a plotting
// script reads, named as in the README) and the progress line of the log. Pure: no I/O.
#pragma once

#include "models/training/learn_report.hpp"
#include "rl/ped_step.hpp"
#include "rl/step_batch.hpp"

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
  double elapsed_s = 0; // since this process started the run
};

struct step_identity {
  int64_t step = 0;  // 1-based: the N-th step writes N, as the log, records and checkpoints do
  int64_t epoch = 0; // 1-based
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

// Where the run stands after a step, for the step line.
struct run_position {
  int64_t step = 0; // 1-based: the step just finished
  int64_t total_steps = 0;
  double elapsed_s = 0; // since this process started the run
  double eta_s = -1;    // for the steps left; negative = not known yet
};

// The step line of the log: "step 3/40 | 0:01:23, ETA 0:12:00 | reward +0.125 | solve 0.50 |
// rejected 0% | flat 25% | failed 0 | loss ... | kl ... | grad ... | lr ... | 850 tok/s rollout,
// 1200 tok/s learn | 5.8s (rollout 1.3, learn 4.4, sync 0.00) | kl(behaviour) ...".
std::string step_line(const run_position& at, const step_stats& stats,
                      const models::learn_report& report, const step_timings& time);

// Tokens per second, 0 when no time passed.
double per_second(double tokens, double seconds);

} // namespace pedagogy::actors
