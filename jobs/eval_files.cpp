// An evaluation's files (see eval_files.hpp).
#include "jobs/eval_files.hpp"

#include "runtime/errors.hpp"
#include "runtime/json_excerpt.hpp"

#include <fmt/format.h>
#include <unistd.h>

namespace pedagogy::actors {

namespace fs = std::filesystem;
using nlohmann::json;

std::string problems_digest(const std::vector<classroom::problem>& problems) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::string& text) {
    for (unsigned char c : text) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff; // separates the fields
    h *= 1099511628211ull;
  };
  for (const auto& p : problems) {
    mix(p.text);
    mix(p.answer);
  }
  return fmt::format("{:016x}", h);
}

void claim_output(const fs::path& out, const json& manifest, bool resume) {
  const auto file = out / "eval.json";
  std::error_code ec;
  if (fs::exists(file, ec)) {
    if (!resume)
      throw input_error(out.string(), "holds an evaluation already (eval.json)",
                        "pass --resume to complete it, or choose another --out");
    const auto old = json::parse(files::read_regular_file(file), nullptr, false);
    if (old.is_discarded() || !old.is_object())
      throw input_error(file.string(), "is not the JSON object pedagogy eval wrote",
                        "choose another --out");
    for (const auto& [key, value] : manifest.items())
      if (!old.contains(key) || old[key] != value)
        throw input_error(file.string(),
                          fmt::format("--resume would change '{}' from {} to {}", key,
                                      old.contains(key) ? json_excerpt(old[key]) : "nothing",
                                      json_excerpt(value)),
                          "resume with the same config, flags and problems file, or evaluate "
                          "into another --out");
    return;
  }
  if (resume)
    throw input_error(out.string(), "has no evaluation to resume (no eval.json)",
                      "run without --resume to start one");
  if (fs::exists(out, ec) && !fs::is_empty(out, ec))
    throw input_error(out.string(), "exists and is not an evaluation's folder",
                      "choose an empty or new --out");
  fs::create_directories(out);
  if (::access(out.c_str(), W_OK) != 0)
    throw input_error(out.string(), "is not writable", "choose another --out");
  files::write_atomically(file, manifest.dump(2) + "\n");
}

std::map<std::string, classroom::dialog_record> read_records(const fs::path& path) {
  std::map<std::string, classroom::dialog_record> out;
  files::for_each_whole_line(path, [&](const std::string& line, int64_t number) {
    if (line.empty())
      return;
    auto record = classroom::from_json_line(line, fmt::format("{}:{}", path.string(), number));
    out[record.id] = std::move(record);
  });
  return out;
}

std::string rm_scores_line(const std::string& id, const rm_scores& s) {
  return json{{"id", id}, {"scores", s.scores}, {"truncated", s.truncated}}.dump();
}

std::map<std::string, rm_scores> read_scores(const fs::path& path) {
  std::map<std::string, rm_scores> out;
  files::for_each_whole_line(path, [&](const std::string& line, int64_t number) {
    if (line.empty())
      return;
    const auto j = json::parse(line, nullptr, false);
    const auto where = fmt::format("{}:{}", path.string(), number);
    if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string() ||
        !j.contains("scores") || !j["scores"].is_array())
      throw input_error(where, "not a reward-model score line (id, scores)",
                        "delete the line (or the file) and --resume scores it again");
    rm_scores s;
    for (const auto& x : j["scores"]) {
      if (!x.is_number())
        throw input_error(where, "a score that is not a number",
                          "delete the line and --resume scores it again");
      s.scores.push_back(x.get<double>());
    }
    s.truncated = j.value("truncated", int64_t{0});
    out[j["id"].get<std::string>()] = std::move(s);
  });
  return out;
}

namespace {

json metric_json(const classroom::metric& m) {
  if (m.count == 0)
    return nullptr;
  return {{"mean", m.mean}, {"ci95", m.ci95}, {"count", m.count}};
}

} // namespace

json row_json(const classroom::eval_row& row) {
  const auto& s = row.summary;
  return {{"tutor", row.tutor},
          {"model", row.model},
          {"problems", s.problems},
          {"dialogs", s.dialogs},
          {"failed", s.failed},
          {"pre_solve_rate", metric_json(s.pre)},
          {"post_solve_rate", metric_json(s.post)},
          {"delta_solve_rate", metric_json(s.delta)},
          {"leaked_solutions", metric_json(s.leaked)},
          {"pedagogy_rejects", metric_json(s.pedagogy_rejects)},
          {"ped_rm_micro", metric_json(s.ped_rm_micro)},
          {"ped_rm_macro", metric_json(s.ped_rm_macro)}};
}

json row_json(const classroom::solve_row& row) {
  return {{"tutor", row.tutor},
          {"model", row.model},
          {"problems", row.problems},
          {"failed", row.failed},
          {"k", row.k},
          {"pass@1", metric_json(row.pass1)},
          {fmt::format("pass@{}", row.k), metric_json(row.passk)}};
}

void write_tables(const fs::path& out, const json& manifest, const json& rows,
                  const std::string& markdown) {
  files::write_atomically(out / "results.json",
                          json{{"evaluation", manifest}, {"rows", rows}}.dump(2) + "\n");
  files::write_atomically(out / "results.md", markdown);
}

} // namespace pedagogy::actors
