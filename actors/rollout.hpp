// Running many dialogs: problems x G samples against one set of generators.
//
// run_rollout() is the real schedule: one conversation actor per dialog, up to a cap running
// at once (the next starts as one finishes, so memory stays flat however many dialogs a step
// has and results stream from the start); each moves to its next turn, its judges and its solutions
// as soon as its own previous call returns, so the generators' continuous batches stay full and no
// dialog waits for another. run_lockstep() is the Python reference's schedule, kept only as a
// benchmark baseline: every dialog's tutor turn, then every dialog's student turn, ..., then all
// judging, then all solutions, each phase waiting for its slowest member.
#pragma once

#include "actors/generator_actor.hpp"
#include "config/schema.hpp"
#include "rl/dialog.hpp"

#include <caf/all.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace pedagogy::actors {

struct role_generators {
  generator_actor tutor;
  generator_actor student;
  generator_actor judge; // unset when the judges are rules
  // Live inspection: each conversation tells it its progress after every call; unset = nobody.
  caf::actor inspector{};
};

// The dialogs of one step: each problem G times; job seeds derive from `seed`, the step, the
// problem index and the sample, so a run is reproducible and resumable.
std::vector<dialog_job> make_jobs(int64_t step, const std::vector<classroom::problem>& problems,
                                  const std::vector<int64_t>& problem_indices, int64_t samples,
                                  uint64_t seed);

// Called once per finished dialog, in finishing order (for progress lines and streaming JSONL).
using result_sink = std::function<void(const dialog_result&)>;

struct rollout_options {
  // Dialogs running at once; the rest wait their turn. 0 = all at once.
  int64_t max_in_flight = 0;
  // Polled while dialogs run: once true, no dialog starts and those running are stopped; every
  // dialog not finished is returned with status "abandoned" (and not passed to the sink).
  std::function<bool()> stop;
};

// The rollout schedule's settings: classroom.max_dialogs_in_flight, where 0 means twice what the
// tutor serves at once (its engine's max_batch_sequences, or its endpoint's max_concurrency), so
// the tutor's batches stay full while the number of live dialogs stays bounded.
rollout_options rollout_options_from(const config::config& cfg);

// The status of a dialog a stopped rollout never finished.
inline constexpr const char* abandoned_status = "abandoned";

// The results in job order. Never throws for a failing dialog: its record says why.
std::vector<dialog_result> run_rollout(caf::actor_system& system,
                                       std::shared_ptr<const classroom_setup> setup,
                                       const role_generators& generators,
                                       std::vector<dialog_job> jobs, const result_sink& sink = {},
                                       const rollout_options& options = {});

std::vector<dialog_result> run_lockstep(caf::actor_system& system,
                                        std::shared_ptr<const classroom_setup> setup,
                                        const role_generators& generators,
                                        std::vector<dialog_job> jobs, const result_sink& sink = {});

// run_rollout's schedule as an actor of its own, for callers that must not block (the
// trainer): sends (rollout_done_atom, tag, std::vector<dialog_result>) in job order to
// `reply_to` when every dialog has finished, then quits. `sink` runs on the schedule's thread.
// An exit message, like options.stop, abandons what has not finished (the results still come).
rollout_handle spawn_rollout(caf::actor_system& system,
                             std::shared_ptr<const classroom_setup> setup,
                             const role_generators& generators, std::vector<dialog_job> jobs,
                             result_sink sink, rollout_options options, caf::actor reply_to,
                             int64_t tag);

// One conversation actor: runs `job` and sends (index, dialog_result) to its schedule.
caf::actor spawn_conversation(caf::actor_system& system,
                              std::shared_ptr<const classroom_setup> setup,
                              const role_generators& generators, dialog_job job, int64_t index,
                              rollout_handle reply_to);

} // namespace pedagogy::actors
