// What the inspector knows about a run, as a value: every watched actor's latest report, the
// trainer's progress, the finished steps' metrics and the dialogs in flight and just finished;
// and its renderings: /status and /dialogs as JSON, /metrics in Prometheus's text format. Pure:
// the inspector actor (inspector_actor.hpp) feeds it and asks it; time comes in as an argument.
//
// An actor's row says what it last reported and how long ago. One that has not reported for
// `unresponsive_after_s` (or whose connection dropped) is shown as "unresponsive", with the
// seconds since it last reported.
#pragma once

#include "inspect/prometheus.hpp"
#include "inspect/status.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

namespace pedagogy::actors {

struct inspection_options {
  double unresponsive_after_s = 5; // no report for this long: unresponsive
  size_t finished_dialogs = 20;    // the last N finished dialogs kept for /dialogs
  std::string run_dir;             // shown in /status
  std::string node;                // where rank 0 (trainer, inspector) runs
};

class inspection {
public:
  using clock = std::chrono::steady_clock;

  inspection(inspection_options options, clock::time_point start);

  // A new row for `who`; returns its index.
  size_t join(const watched_actor& who, clock::time_point now);
  void on_generator(size_t row, const generator_status& status, clock::time_point now);
  void on_learner(size_t row, const learner_status& status, clock::time_point now);
  // The actor is gone (its process died, or its connection dropped): unresponsive from now on.
  void on_lost(size_t row, const std::string& why);
  void on_trainer(const trainer_status& status, clock::time_point now);
  // A finished step's metrics.jsonl line; a line that is not a JSON object is ignored.
  void on_step(const std::string& metrics_line);
  void on_dialog(const dialog_progress& progress, clock::time_point now);
  void on_finished(const classroom::dialog_record& record);

  nlohmann::json status(clock::time_point now) const;  // /status
  nlohmann::json dialogs() const;                      // /dialogs
  nlohmann::json steps() const;                        // /steps: every finished step's metrics
  std::string prometheus(clock::time_point now) const; // /metrics

  size_t rows() const {
    return rows_.size();
  }

private:
  struct row {
    watched_actor who;
    bool reported = false;
    bool lost = false;
    std::string lost_reason;
    clock::time_point joined, last_report;
    std::string state = "starting";
    int64_t queue = 0, in_flight = 0, sessions = 0;
    int64_t tokens = 0; // generated (generators) or trained (learners), monotonic
    double tokens_per_s = 0;
    // (time, tokens) of the reports of the last rate_window, for tokens_per_s: a learner's tokens
    // arrive once per learn() and a generator idles while the learner works, so the rate of the
    // last report alone would read 0 most of the time.
    std::deque<std::pair<clock::time_point, int64_t>> rate_samples;
    int64_t kv_used = 0, kv_capacity = 0;
    int64_t weights_version = 0;
    int64_t host_memory = 0, device_memory = -1;
    std::string last_error;
    int64_t prefill_computed = 0, prefill_reused = 0, engine_steps = 0, evictions = 0;
    double busy_seconds = 0;
    int64_t learn_calls = 0, micro_done = 0, micro_total = 0;
  };

  void count_tokens(row& r, int64_t tokens, clock::time_point now);
  // /status's parts.
  nlohmann::json trainer_row(clock::time_point now) const;
  nlohmann::json inspector_row() const;
  nlohmann::json actor_row(const row& r, clock::time_point now) const;
  nlohmann::json run_json(clock::time_point now) const;
  // /metrics's run counters.
  void run_metrics(prometheus::exposition& out) const;
  bool responsive(const row& r, clock::time_point now) const;
  std::string shown_state(const row& r, clock::time_point now) const;
  double since_report(const row& r, clock::time_point now) const;

  inspection_options options_;
  clock::time_point start_;
  std::chrono::system_clock::time_point started_at_;
  std::vector<row> rows_;
  trainer_status trainer_;
  bool trainer_seen_ = false;
  clock::time_point trainer_time_;
  std::vector<nlohmann::json> steps_;
  std::map<std::string, std::pair<dialog_progress, clock::time_point>> in_flight_;
  std::deque<nlohmann::json> finished_;
  int64_t dialogs_finished_ = 0, dialogs_failed_ = 0;
  int64_t reports_ = 0; // every status, progress and record taken in
  std::map<int64_t, int64_t> finished_by_step_;
};

} // namespace pedagogy::actors
