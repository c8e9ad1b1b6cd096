// What the running actors report about themselves, for live inspection: a generator's queue and
// cache, a learner's progress, the trainer's phase, a dialog in flight, and where each watched
// actor runs. Plain values; the inspector actor receives them as messages (actors/protocol.hpp).
#pragma once

#include "classroom/record.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pedagogy::actors {

// What a generator is doing, for logs and live inspection.
struct generator_status {
  std::string role;
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t sessions = 0;
  int64_t cached_tokens = 0;  // tokens in KV caches, a fork's shared prompt once per sample
  int64_t kv_held_tokens = 0; // KV memory held, in tokens: blocks in use x block size
  int64_t prefill_computed = 0;
  int64_t prefill_reused = 0;
  int64_t generated = 0;
  int64_t steps = 0;
  int64_t evictions = 0;
  double busy_seconds = 0;
  int64_t weights_version = 0;
  // For live inspection: where it runs, its KV cache's capacity, the memory of its process and
  // device (-1 = unknown, e.g. on CPU), and the last request it refused or failed ("" = none).
  std::string device;
  int64_t kv_capacity = 0;
  int64_t host_memory = 0;
  int64_t device_memory = -1;
  std::string last_error;
};

// What a learner is doing, for live inspection: answered to `status` between messages, and sent
// unasked to whoever asked last while a long learn() runs (after each micro-batch, at most once
// per heartbeat), so that a busy learner is not taken for a dead one.
struct learner_status {
  std::string state = "idle"; // "idle", "learning", "scoring", "publishing" or "saving"
  std::string device;
  int64_t learn_calls = 0;    // rollout batches learned from
  int64_t trained_tokens = 0; // loss tokens over every pass so far
  int64_t micro_done = 0;     // of the learn() in progress
  int64_t micro_total = 0;
  double busy_seconds = 0;
  int64_t weights_version = 0; // the last version it published
  int64_t host_memory = 0;
  int64_t device_memory = -1;
  std::string last_error;
};

// The trainer's phase and progress, sent to the inspector at every phase change and heartbeat.
struct trainer_status {
  std::string state; // "rolling_out", "learning", "syncing", "checkpointing", "stopping",
                     // "finished" or "failed"
  int64_t step = 0;  // the step being worked on
  int64_t total_steps = 0;
  int64_t completed = 0;     // steps whose update is applied
  int64_t dialogs_total = 0; // of a step
  int64_t weights_version = 0;
  double step_seconds = 0; // since the step started
  int64_t host_memory = 0;
  std::string last_error;
};

// A dialog in flight, as the inspector shows it: sent by its conversation after every call.
struct dialog_progress {
  std::string id;
  int64_t step = 0;
  std::string phase; // the conversation's phase: "tutor_turn", "student_turn", "judging", ...
  int64_t tutor_turns = 0;
  std::string problem;
  std::string student_name;
  std::string persona;
  bool ped_teacher = false;
  std::vector<classroom::dialog_message> messages; // so far, as the tutor sees them
  double seconds = 0;                              // since it started
};

// Where a watched actor runs, as the job that placed it knows it.
struct watched_actor {
  std::string role;  // "tutor", "student", "judge", "learner", "ped_teacher", ...
  int64_t index = 0; // replica or learner index within the role
  int64_t rank = 0;
  std::string node;
  std::string device;
  std::string kind; // "generator" (answers generator_status) or "learner" (learner_status)
};

} // namespace pedagogy::actors
