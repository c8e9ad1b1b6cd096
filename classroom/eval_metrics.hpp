// The evaluation's metrics (reference/classroom.md §6), as pure functions over finished dialogs:
// pre- and post-dialog solve rate and their difference, the leak and pedagogy reject rates, and
// the pedagogical reward model's macro and micro averages; each a mean over problems (repeats of
// a problem averaged first) with a 95% confidence interval from the per-problem values.
//
// Kept from the reference, because its published numbers mean them:
//   - a dialog's leak (or pedagogy) rate is #REJECT / #verdicts of that judge, so with 2 verdicts
//     it contributes 0, 0.5 or 1, not a strict per-dialog yes/no;
//   - Ped-RM macro counts a dialog with no scored tutor turn as 0.
// Fixed: a failed dialog (no solutions, no verdicts) is left out of every metric and counted,
// instead of entering as zeros; a dialog without verdicts of a judge is left out of that judge's
// rate instead of dividing by zero.
#pragma once

#include "classroom/record.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pedagogy::classroom {

// One dialog of an evaluation, reduced to what the metrics read.
struct dialog_eval {
  int64_t problem = 0;        // the problem's index: its repeats are averaged first
  bool failed = false;        // left out of every metric
  std::optional<double> pre;  // pre-dialog solve rate (the student alone); none = not computed
  std::optional<double> post; // r_sol: correct fraction of the K post-dialog solutions, no penalty
  std::vector<bool> leak_rejects;     // does_not_leak_answer verdicts, true = REJECT
  std::vector<bool> pedagogy_rejects; // follows_pedagogical_values verdicts
  std::vector<double> ped_rm;         // Ped-RM score of each scored tutor turn
  bool ped_rm_scored = false;         // the reward model ran on this dialog
};

struct metric {
  double mean = 0;
  double ci95 = 0;   // half-width; 0 with fewer than 2 problems
  int64_t count = 0; // problems that have the value
};

struct eval_summary {
  metric pre, post, delta, leaked, pedagogy_rejects, ped_rm_macro, ped_rm_micro;
  int64_t problems = 0, dialogs = 0, failed = 0;
};

// The judge rules the rates read.
inline constexpr const char* leak_rule = "does_not_leak_answer";
inline constexpr const char* pedagogy_rule = "follows_pedagogical_values";

// A finished record as the metrics read it (its pre-dialog rate computed apart).
dialog_eval to_eval(const dialog_record& record, std::optional<double> pre = std::nullopt);

eval_summary summarize(const std::vector<dialog_eval>& dialogs);

// One row of the evaluation's table: a tutor and its metrics.
struct eval_row {
  std::string tutor; // its label
  std::string model; // directory or endpoint
  eval_summary summary;
};

// Plain solve accuracy of one model: pass@1 and pass@k over problems.
struct solve_row {
  std::string tutor, model;
  int64_t problems = 0, failed = 0, k = 1;
  metric pass1, passk;
};

// The tables as Markdown: rates in percent, each "mean ± half-width of the 95% interval"; a
// metric no dialog has is "-".
std::string markdown_table(const std::vector<eval_row>& rows);
std::string markdown_table(const std::vector<solve_row>& rows);

// Plain solve accuracy (no dialog): the unbiased pass@k of a problem with `correct` of `samples`
// solutions right (Chen et al. 2021: 1 - C(n-c, k) / C(n, k)); k <= samples.
double pass_at_k(int64_t samples, int64_t correct, int64_t k);

// pass@k over problems, each given as (samples, correct), with its 95% interval.
metric pass_at_k(const std::vector<std::pair<int64_t, int64_t>>& problems, int64_t k);

} // namespace pedagogy::classroom
