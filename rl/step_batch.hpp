// One step's dialogs as the learner and the metrics see them: the dialogs of each problem form a
// GRPO group (failed dialogs sit out), each group gets its advantages (DeepSeekMath §4.1.2, in
// models/grpo), each dialog becomes a training sequence straight from the tutor's exact session
// history, and the step's means are taken over the dialogs that finished. Pure: no actors, no I/O.
#pragma once

#include "rl/dialog.hpp"
#include "rl/messages.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pedagogy::actors {

struct group_options {
  int64_t group_size = 8;    // G: consecutive results of one problem
  bool scale_rewards = true; // divide by the group's std + std_eps
  double std_eps = 1e-4;
  std::vector<std::string> judge_rules; // for the reject rate of each rule
};

// Means over the dialogs that finished (0 when none did).
struct step_stats {
  int64_t dialogs = 0;
  int64_t failed = 0; // failed dialogs, and finished ones whose tutor produced no tokens
  double reward = 0, reward_end = 0, reward_thinking = 0, reward_end_marker = 0, reward_length = 0;
  double solve_rate = 0; // over the dialogs that were solved at all (not rejected in hard mode)
  double rejected = 0;
  std::map<std::string, double> reject_rate_by_rule;
  double tutor_turns = 0, tutor_tokens = 0;
  double advantage_mean = 0, advantage_std = 0, advantage_min = 0, advantage_max = 0;
  // The share of groups (with a finished dialog) whose rewards are all equal: their advantages
  // are zero, so they teach the learner nothing.
  double flat_groups = 0;
  int64_t generated_tokens = 0; // by every role in every dialog, failed ones included
};

struct step_batch {
  rollout_batch batch; // sequences in result order, groups without a finished dialog left out
  step_stats stats;
};

step_batch make_step_batch(const std::vector<dialog_result>& results, const group_options& options);

// The sequences (indices into `batch`, in batch order) that data-parallel learner `index` of
// `learners` trains on: the counts differ by at most one, and the longest sequences are dealt
// first, each to the learner with the fewest tokens so far, so the ranks finish together.
std::vector<size_t> learner_share(const std::vector<models::training_sequence>& batch,
                                  int64_t learners, int64_t index);

} // namespace pedagogy::actors
