// `pedagogy eval`: the reference's evaluation (reference/classroom.md §6) for one or more tutors
// sharing one student and one set of judges, and the plain solve-accuracy check.
//
// Dialog mode, in <out>/:
//   eval.json            what is being evaluated (problems digest, tutors, knobs); --resume
//                        refuses to continue an evaluation of something else
//   pre_dialog.jsonl     per problem, the student's K solutions without a dialog (shared by all
//                        tutors: every tutor is compared against the same baseline)
//   <tutor>/dialogs.jsonl   one record per dialog, soft mode (every judge, K solutions)
//   <tutor>/ped_rm.jsonl    the pedagogical reward model's score of each tutor turn
//   results.md, results.json  one row per tutor, each metric with its 95% interval
// Solve mode (--solve): <tutor>/solutions.jsonl and pass@1 / pass@k per tutor.
//
// Everything is appended as it finishes; --resume keeps the finished rows and runs the rest
// (failed rows included). Tutors run one after another, each with its own generator, so the
// student and judges are loaded once and only one tutor's model is in memory at a time.
#pragma once

#include "config/schema.hpp"
#include "jobs/eval_tutors.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace pedagogy::actors {

struct eval_run_options {
  std::filesystem::path out;
  std::vector<eval_tutor> tutors; // empty = the config's [tutor]
  bool solve = false;             // plain solve accuracy instead of dialogs
  bool resume = false;
  int64_t limit = 0;    // problems; 0 = eval.max_problems
  std::string problems; // "" = eval.problems
};

// Runs the evaluation and writes the tables; returns the exit code (1 when every dialog of some
// tutor failed, or on a stop signal's code). Throws input_error for bad input before any model
// is loaded.
int run_evaluation(const config::config& cfg, const eval_run_options& options);

} // namespace pedagogy::actors
