// The files of an evaluation's folder (see eval.hpp), apart from running it: what is being
// evaluated (eval.json, claimed at start and checked on --resume), records and reward-model
// scores read back for --resume and appended as they finish, and the tables.
#pragma once

#include "classroom/eval_metrics.hpp"
#include "classroom/problems.hpp"
#include "classroom/record.hpp"
#include "runtime/files.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace pedagogy::actors {

// FNV-1a over every problem and answer, as 16 hex digits: the same on every build, so --resume
// can tell whether the problems it would run are the ones already evaluated.
std::string problems_digest(const std::vector<classroom::problem>& problems);

// Creates `out`/eval.json holding `manifest`; on --resume checks instead that the one there has
// the same value for every key. Throws input_error for an evaluation already there (without
// --resume), none to resume, a folder holding something else, or a resume that would change
// a key (naming it, with both values).
void claim_output(const std::filesystem::path& out, const nlohmann::json& manifest, bool resume);

// The records of a JSONL file, the last one of each id winning (a failed dialog run again
// appends its new record); a line cut short by an interrupted write is left out. Throws
// input_error naming file:line for a line that is not a record.
std::map<std::string, classroom::dialog_record> read_records(const std::filesystem::path& path);

// The pedagogical reward model's scores of one dialog's tutor turns.
struct rm_scores {
  std::vector<double> scores;
  int64_t truncated = 0; // turns longer than the model's max length, scored on their last tokens
};

std::string rm_scores_line(const std::string& id, const rm_scores& scores);
// As read_records, for lines rm_scores_line() wrote.
std::map<std::string, rm_scores> read_scores(const std::filesystem::path& path);

// A table row as JSON: every metric as {mean, ci95, count}, or null where nothing was measured.
nlohmann::json row_json(const classroom::eval_row& row);
nlohmann::json row_json(const classroom::solve_row& row);

// results.json ({"evaluation": manifest, "rows": rows}) and results.md, each atomically.
void write_tables(const std::filesystem::path& out, const nlohmann::json& manifest,
                  const nlohmann::json& rows, const std::string& markdown);

} // namespace pedagogy::actors
