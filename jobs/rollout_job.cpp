// `pedagogy rollout` (see rollout_job.hpp).
#include "jobs/rollout_job.hpp"

#include "actors/rollout.hpp"
#include "classroom/problems.hpp"
#include "classroom/record.hpp"
#include "jobs/preflight.hpp"
#include "jobs/setup.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/signals.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <utility>

namespace pedagogy::actors {

namespace {

// Whether two paths name the same file: the same inode when both exist (links included), else
// the same normalised absolute path.
// An empty file, or one whose first line is a dialog record (what an earlier rollout wrote).
bool holds_records(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return false;
  if (std::filesystem::file_size(path, ec) == 0)
    return true;
  files::reader in(path);
  std::string first;
  in.next_line(first);
  const auto j = nlohmann::json::parse(first, nullptr, false);
  return !j.is_discarded() && j.is_object() && j.contains("id") && j.contains("status") &&
         j.contains("problem");
}

bool same_file(const std::filesystem::path& a, const std::filesystem::path& b) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec))
    return fs::equivalent(a, b, ec);
  auto normal = [](const fs::path& p) {
    std::error_code error;
    fs::path canonical = fs::weakly_canonical(p, error);
    return error ? fs::absolute(p, error).lexically_normal() : canonical;
  };
  return normal(a) == normal(b);
}

// Running totals for the progress line and the summary.
struct tally {
  int64_t done = 0, failed = 0, rejected = 0, with_solutions = 0;
  double reward = 0, solve_rate = 0;
  void add(const classroom::dialog_record& r) {
    ++done;
    if (r.status != "ok") {
      ++failed;
      return;
    }
    rejected += r.rejected;
    reward += r.reward.total;
    if (r.reward.solve_rate) {
      ++with_solutions;
      solve_rate += *r.reward.solve_rate;
    }
  }
  std::string line(int64_t total, double seconds) const {
    const int64_t ok = done - failed;
    return fmt::format("rollout {}/{} dialogs | {:.2f} dialogs/s | reward {:+.3f} | solve rate "
                       "{:.3f} | rejected {:.0f}% | failed {}",
                       done, total, seconds > 0 ? static_cast<double>(done) / seconds : 0.0,
                       ok ? reward / static_cast<double>(ok) : 0.0,
                       with_solutions ? solve_rate / static_cast<double>(with_solutions) : 0.0,
                       ok ? 100.0 * static_cast<double>(rejected) / static_cast<double>(ok) : 0.0,
                       failed);
  }
};

// No input is ever an output, and --force overwrites only a file of dialog records.
void check_output(const config::config& cfg, const std::filesystem::path& out,
                  const std::string& problems_path, bool force) {
  // --force once replaced the problem set with dialog records: no input is ever an output.
  for (const auto& [input, role] : {std::pair{problems_path, "the problems being rolled out"},
                                    std::pair{cfg.data.train, "the config's data.train"},
                                    std::pair{cfg.eval.problems, "the config's eval.problems"}})
    if (same_file(out, input))
      throw input_error("flag --out", fmt::format("{} is also an input ({})", out.string(), role),
                        "write the records to another file; --force never overwrites an input");
  if (std::filesystem::exists(out) && !force)
    throw input_error(out.string(), "the output file exists",
                      "pass --force to overwrite it, or choose another --out");
  // --force pointed at a config, a model's weights or a template destroyed it: only a file of
  // dialog records (or an empty one) is ever overwritten.
  if (std::filesystem::exists(out) && !holds_records(out))
    throw input_error(out.string(),
                      "--force overwrites only dialog records, and this is not a "
                      "file of them",
                      "choose another --out");
}

// The dialogs of every problem, streamed to `out` as they finish; the exit code.
int write_dialogs(const config::config& cfg, std::shared_ptr<const classroom_setup> setup,
                  const std::vector<classroom::problem>& problems, const std::string& problems_path,
                  int64_t samples, const std::filesystem::path& out) {
  caf::actor_system_config system_config;
  configure_actor_system(system_config, cfg, false);
  caf::actor_system system{system_config};
  auto generators = spawn_role_generators(system, cfg);
  // Only now that the models loaded is the output (re)created, so a run that cannot start leaves
  // an earlier file alone. Records stream in as dialogs finish, so an interrupted run keeps what
  // it did; each is a whole line or absent, and a failed write stops the run (exit 1) naming it.
  files::line_appender file(out); // refuses while a train, rollout or eval writes it
  file.truncate();

  std::vector<int64_t> indices(problems.size());
  std::iota(indices.begin(), indices.end(), 0);
  auto jobs = make_jobs(0, problems, indices, samples, static_cast<uint64_t>(cfg.train.seed));
  const auto total = static_cast<int64_t>(jobs.size());
  log::get("rollout")->info("{} problems x {} samples from {} -> {}", problems.size(), samples,
                            problems_path, out.string());

  tally t;
  std::string first_failure;
  const bool tty = isatty(STDERR_FILENO) != 0;
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  int64_t printed_at = 0;
  // Ctrl-C / SIGTERM: no new dialog starts, those running are stopped, the records written so far
  // stay; a second signal exits at once.
  signals::install_stop_handlers();
  auto schedule = rollout_options_from(cfg);
  schedule.stop = [] {
    return signals::stop_requested() != 0;
  };
  run_rollout(
    system, setup, generators, std::move(jobs),
    [&](const dialog_result& result) {
      file.append(classroom::to_json_line(result.record));
      t.add(result.record);
      if (result.record.status != "ok") {
        log::get("rollout")->warn("dialog {} failed: {}", result.record.id, result.record.error);
        if (first_failure.empty())
          first_failure = result.record.error;
      }
      // On a terminal the line updates in place; in a log, about every 10%.
      if (tty) {
        std::cerr << '\r' << t.line(total, elapsed()) << std::flush;
      } else if (t.done * 10 / total > printed_at * 10 / total || t.done == total) {
        std::cerr << t.line(total, elapsed()) << '\n';
        printed_at = t.done;
      }
    },
    schedule);
  file.close();
  if (tty)
    std::cerr << '\n';
  if (const int signal = signals::stop_requested(); signal != 0) {
    std::cerr << fmt::format("stopped by signal {}: {} of {} dialogs written to {}\n", signal,
                             t.done, total, out.string());
    signals::exit_now(signals::exit_code_for(signal)); // not waiting for requests in flight
  }
  const double seconds = elapsed();
  // Now, not when `system` goes: a pending request's timer (an OpenAI call's guard, timeout_s +
  // 30 s) would otherwise keep the process alive that long after the last dialog.
  stop_generators(system, generators);
  std::cout << fmt::format("wrote {} dialogs to {} in {:.1f} s ({} failed)\n", t.done, out.string(),
                           seconds, t.failed);
  if (t.done > 0 && t.failed == t.done) {
    std::cerr << fmt::format("error: every dialog failed (the first: {})\n  hint: the reasons are "
                             "in each record's \"error\" field of {}\n",
                             first_failure.empty() ? "see the log" : first_failure, out.string());
    return static_cast<int>(exit_code::failure);
  }
  return static_cast<int>(exit_code::ok);
}

} // namespace

int rollout(const config::config& cfg, const rollout_job_options& opts) {
  const std::filesystem::path out = opts.out;
  const std::string problems_path = opts.problems.empty() ? cfg.data.train : opts.problems;
  check_output(cfg, out, problems_path, opts.force);
  auto problems = classroom::load_problems(
    problems_path, {cfg.data.problem_field, cfg.data.answer_field},
    opts.limit > 0 ? opts.limit : cfg.data.max_problems, static_cast<uint64_t>(cfg.train.seed));
  if (problems.empty())
    throw input_error(problems_path, "no problems", "the file has no rows");
  const int64_t samples = opts.samples > 0 ? opts.samples : cfg.train.samples_per_problem;

  // Everything that can be wrong with the input fails here, before any model is loaded.
  auto setup = make_classroom_setup(cfg);
  check_roles_before_loading(cfg);
  if (out.has_parent_path())
    std::filesystem::create_directories(out.parent_path());
  const auto folder = out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
  if (::access(folder.c_str(), W_OK) != 0)
    throw input_error(out.string(), "cannot write the output file: its folder is not writable",
                      "choose another --out");

  return write_dialogs(cfg, std::move(setup), problems, problems_path, samples, out);
}

} // namespace pedagogy::actors
