// Pedagogical RL inside a training step (../shared/reference/privileged_pedagogical_rl.md §10),
// the pure part: which groups the ped_teacher is asked to rescue, the ped_learner views to score,
// the ped_teacher's reward R x G and its GRPO batch, the corpus the ped_learner imitates, and the
// step's figures. No actors, no tensors: the trainer actor sends what these build.
//
// A trajectory succeeds when it finished, was not rejected and solved the problem (solve rate
// > 0; for a solver, its one answer is right). R is the record's reward.
#pragma once

#include "config/schema.hpp"
#include "models/ped/ped_score.hpp"
#include "rl/dialog.hpp"
#include "rl/messages.hpp"

#include <cstdint>
#include <vector>

namespace pedagogy::actors {

bool succeeded(const dialog_result& r);

// The problems (indices into the problem set) of the groups of `results` (consecutive runs of
// `group_size`) in which no trajectory succeeded, in result order: what `rescue` hands over.
std::vector<int64_t> failed_problems(const std::vector<dialog_result>& results, int64_t group_size);

// The ped_learner's view of each ped_teacher result as a sequence to score (a failed dialog
// gives an empty sequence, which scores G = 0).
std::vector<models::training_sequence> learner_views(const std::vector<dialog_result>& teacher);

// r_ped of each ped_teacher result: max(R, 0) x G (product), or R - additive_lambda x NLL.
std::vector<double> ped_rewards(const std::vector<dialog_result>& teacher,
                                const std::vector<models::ped_score>& scores,
                                const config::ped_config& ped);

// The ped_teacher's GRPO batch: its own view of each result, the advantages from r_ped within each
// problem's group (consecutive runs of `group_size`; failed dialogs sit out).
rollout_batch teacher_batch(const std::vector<dialog_result>& teacher,
                            const std::vector<double>& rewards, int64_t group_size,
                            bool scale_rewards, double std_eps);

// The figures of one step's ped_teacher trajectories and corpus (means over the teacher's
// finished trajectories unless said otherwise).
struct ped_stats {
  int64_t rollouts = 0;        // trajectories sampled this step, the ped_teacher's included
  int64_t rescued_groups = 0;  // rescue: groups handed to the ped_teacher
  int64_t teacher_dialogs = 0; // trajectories the ped_teacher sampled this step
  double teacher_reward = 0;   // R
  double teacher_success = 0;  // share that succeeded
  double g = 0;                // G
  double r_ped = 0;            // the ped_teacher's reward
  double gap_mean = 0;         // mean gap per trajectory
  double gap_max = 0;          // largest gap per trajectory
  double answer_gap = 0;       // mean gap on the answer's tokens, over trajectories that spell it
  double leak_rate = 0;        // tutor: share whose tutor turns state the answer
  double backfill_rate = 0;    // share of successes whose largest gap is on an answer token
  int64_t corpus_kept = 0;     // trajectories kept for imitation
  double corpus_coverage = 0;  // share of the problems asked with at least one kept
  double corpus_g = 0;         // mean G of the kept ones
  double score_s = 0;          // the scoring pass
  double teacher_rollout_s = 0;
  double teacher_learn_s = 0; // rounds: the ped_teacher's update
};

// Keeps the trajectories the ped_learner imitates: successes with R > 0, not leaking the answer
// (tutor, with leak_filter), with G >= min_g; then per problem the best G, the top_k best, or all.
// Each becomes its ped_learner view with imitation weight `weight`. Fills the corpus figures.
std::vector<models::training_sequence> select_corpus(const std::vector<dialog_result>& teacher,
                                                     const std::vector<models::ped_score>& scores,
                                                     const config::ped_config& ped, double weight,
                                                     ped_stats& stats);

// The trajectory figures of `stats` (everything but the corpus and the timings).
void describe_teacher(const std::vector<dialog_result>& teacher,
                      const std::vector<models::ped_score>& scores,
                      const std::vector<double>& rewards, const config::ped_config& ped,
                      ped_stats& stats);

} // namespace pedagogy::actors
