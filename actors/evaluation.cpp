// `pedagogy eval` (see evaluation.hpp).
#include "actors/evaluation.hpp"

#include "actors/placement.hpp"
#include "actors/rollout.hpp"
#include "actors/setup.hpp"
#include "classroom/eval_metrics.hpp"
#include "classroom/problems.hpp"
#include "classroom/record.hpp"
#include "classroom/views.hpp"
#include "models/model_config.hpp"
#include "models/reward_model.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/seeds.hpp"
#include "runtime/signals.hpp"

#include <ATen/Context.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>

namespace pedagogy::actors {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool plain_label(const std::string& label) {
  return !label.empty() && label != "." && label != ".." &&
         label.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "._-") == std::string::npos;
}

// Turns a path's components into a label: anything but letters, digits, '.', '_' and '-'
// becomes '_'.
std::string label_of(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      c = '_';
  return text;
}

// A model directory's label: its last component, or for a checkpoint (runs/X/checkpoints/
// step-N) the run's name and the step.
std::string label_for_dir(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty())
    p = p.parent_path();
  std::string name = p.filename().string();
  if (name.starts_with("step-") && p.has_parent_path()) {
    auto run = p.parent_path();
    if (run.filename() == "checkpoints" && run.has_parent_path())
      run = run.parent_path();
    name = run.filename().string() + "-" + name;
  }
  return label_of(name);
}

std::string describe_model(const config::role_config& role) {
  return role.backend == config::backend_kind::openai
           ? fmt::format("{}@{}", role.openai.model.empty() ? role.model : role.openai.model,
                         role.openai.base_url)
           : role.model;
}

// ---- progress --------------------------------------------------------------------------------

std::string duration_text(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds))
    return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  if (s < 60)
    return fmt::format("{}s", s);
  if (s < 3600)
    return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

// One phase's progress line: on a terminal in place, in a log about every 10%.
class progress {
public:
  progress(std::string what, int64_t total, int64_t already)
    : what_(std::move(what)), total_(total), already_(already), tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()) {}

  void add(bool failed) {
    ++done_;
    failed_ += failed ? 1 : 0;
    const int64_t todo = total_ - already_;
    if (tty_) {
      std::cerr << '\r' << line() << std::flush;
    } else if (todo > 0 && (done_ * 10 / todo > printed_ * 10 / todo || done_ == todo)) {
      std::cerr << line() << '\n';
      printed_ = done_;
    }
  }
  void finish() const {
    if (tty_ && done_ > 0)
      std::cerr << '\n';
  }

private:
  std::string line() const {
    const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0.0;
    const int64_t left = total_ - already_ - done_;
    return fmt::format("{} {}/{} | {:.2f}/s | elapsed {} | ETA {} | failed {}", what_,
                       already_ + done_, total_, rate, duration_text(seconds),
                       rate > 0 ? duration_text(static_cast<double>(left) / rate) : "?", failed_);
  }

  std::string what_;
  int64_t total_, already_;
  int64_t done_ = 0, failed_ = 0, printed_ = 0;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
};

// ---- records on disk -------------------------------------------------------------------------

// The records a file holds, the last one of each id winning (a rerun failed dialog appends its
// new record). A line cut short by an interrupted write is dropped when the file is reopened.
std::map<std::string, classroom::dialog_record> read_records(const fs::path& path) {
  std::map<std::string, classroom::dialog_record> out;
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return out;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (in.eof())
      break; // no '\n': an interrupted write, which line_appender cuts off
    if (line.empty())
      continue;
    auto record = classroom::from_json_line(line, fmt::format("{}:{}", path.string(), number));
    out[record.id] = std::move(record);
  }
  return out;
}

// Appends records as they finish; a failed write stops the evaluation, naming the file.
class record_file {
public:
  explicit record_file(const fs::path& path) : file_(path) {
    if (!file_.try_lock())
      throw input_error(path.string(), "another pedagogy eval is writing this file",
                        "wait for it to finish, or choose another --out");
  }
  void append(const classroom::dialog_record& r) {
    file_.append(classroom::to_json_line(r));
  }
  void close() {
    file_.close();
  }

private:
  files::line_appender file_;
};

// ---- what is evaluated -----------------------------------------------------------------------

struct plan {
  std::string mode; // "dialog" or "solve"
  std::vector<classroom::problem> problems;
  json manifest;
};

// FNV-1a over every problem and answer: the same on every build, so --resume can tell whether
// the problems it would run are the ones already evaluated.
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

json manifest_of(const config::config& cfg, const eval_run_options& opts,
                 const std::vector<eval_tutor>& tutors, const std::string& problems_path,
                 const std::vector<classroom::problem>& problems) {
  json t = json::array();
  for (const auto& tutor : tutors)
    t.push_back({{"label", tutor.label}, {"model", describe_model(tutor.role)}});
  json m = {{"mode", opts.solve ? "solve" : "dialog"},
            {"problems_file", problems_path},
            {"problems", problems.size()},
            {"problems_digest", problems_digest(problems)},
            {"seed", cfg.train.seed},
            {"tutors", t}};
  if (opts.solve) {
    m["solve_samples"] = cfg.eval.solve_samples;
  } else {
    m["samples_per_problem"] = cfg.eval.samples_per_problem;
    m["student_attempts"] = cfg.classroom.number_student_attempts;
    m["pre_dialog_attempts"] = cfg.eval.pre_dialog_attempts;
    m["student"] = describe_model(cfg.student);
    m["judge"] = cfg.judge.backend == config::backend_kind::rule ? std::string("rule")
                                                                 : describe_model(cfg.judge);
    m["reward_model"] = cfg.eval.reward_model;
  }
  return m;
}

// Creates <out>/eval.json, or checks on --resume that it describes the same evaluation.
void claim_output(const fs::path& out, const json& manifest, bool resume) {
  const auto file = out / "eval.json";
  std::error_code ec;
  if (fs::exists(file, ec)) {
    if (!resume)
      throw input_error(out.string(), "holds an evaluation already (eval.json)",
                        "pass --resume to complete it, or choose another --out");
    std::ifstream in(file);
    const auto old = json::parse(in, nullptr, false);
    if (old.is_discarded() || !old.is_object())
      throw input_error(file.string(), "is not the JSON object pedagogy eval wrote",
                        "choose another --out");
    for (const auto& [key, value] : manifest.items())
      if (!old.contains(key) || old[key] != value)
        throw input_error(file.string(),
                          fmt::format("--resume would change '{}' from {} to {}", key,
                                      old.contains(key) ? old[key].dump() : "nothing",
                                      value.dump()),
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

// ---- running jobs ----------------------------------------------------------------------------

struct phase_result {
  std::map<std::string, classroom::dialog_record> records; // by id, resumed and new
  bool stopped = false;
};

// Runs the jobs whose records `path` does not hold as "ok" yet, appending each as it finishes.
phase_result run_phase(caf::actor_system& system, std::shared_ptr<const classroom_setup> setup,
                       const role_generators& generators, std::vector<dialog_job> jobs,
                       const fs::path& path, const std::string& what,
                       const rollout_options& schedule) {
  phase_result out;
  out.records = read_records(path);
  const auto total = static_cast<int64_t>(jobs.size());
  std::vector<dialog_job> pending;
  for (auto& job : jobs) {
    auto it = out.records.find(dialog_id(job));
    if (it == out.records.end() || it->second.status != "ok")
      pending.push_back(std::move(job));
  }
  const auto already = total - static_cast<int64_t>(pending.size());
  if (pending.empty()) {
    log::get("eval")->info("{}: all {} done already", what, total);
    return out;
  }
  if (already > 0)
    log::get("eval")->info("{}: {} of {} done already, running the other {}", what, already, total,
                           pending.size());
  record_file file(path);
  progress shown(what, total, already);
  auto results = run_rollout(
    system, std::move(setup), generators, std::move(pending),
    [&](const dialog_result& r) {
      file.append(r.record);
      shown.add(r.record.status != "ok");
      if (r.record.status != "ok")
        log::get("eval")->warn("{} {} failed: {}", what, r.record.id, r.record.error);
    },
    schedule);
  file.close();
  shown.finish();
  for (auto& r : results) {
    if (r.record.status == abandoned_status) {
      out.stopped = true;
      continue;
    }
    out.records[r.record.id] = std::move(r.record);
  }
  return out;
}

// Stops a generator and waits until it is gone, so its model's memory is free for the next.
template <class Handle>
void stop_generator(caf::actor_system& system, const Handle& generator) {
  if (!generator)
    return;
  caf::scoped_actor self{system};
  self->monitor(generator);
  caf::anon_send_exit(generator, caf::exit_reason::user_shutdown);
  bool gone = false;
  self->receive([&](caf::down_msg&) { gone = true; },
                caf::after(std::chrono::seconds(60)) >> [] {});
  if (!gone)
    log::get("eval")->warn("a generator did not stop within 60 s; going on");
}

// ---- the pedagogical reward model ------------------------------------------------------------

struct rm_scores {
  std::vector<double> scores;
  int64_t truncated = 0;
};

std::map<std::string, rm_scores> read_scores(const fs::path& path) {
  std::map<std::string, rm_scores> out;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (in.eof())
      break; // no '\n': an interrupted write, which line_appender cuts off
    if (line.empty())
      continue;
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
  }
  return out;
}

at::Device device_of(const std::string& name) {
  try {
    return name == "auto" ? at::Device(at::hasCUDA() ? at::kCUDA : at::kCPU) : at::Device(name);
  } catch (const std::exception&) {
    throw input_error("eval.reward_model_device", fmt::format("'{}' is not a device", name),
                      "use cpu, cuda, cuda:N or auto");
  }
}

// Scores every ok dialog of `records` that `path` has no scores for yet, appending as it goes.
std::map<std::string, rm_scores>
score_dialogs(const std::map<std::string, classroom::dialog_record>& records, const fs::path& path,
              const std::string& label, const classroom::ped_rm_prompts& prompts,
              std::optional<models::reward_model>& model, const config::eval_config& e) {
  auto scores = read_scores(path);
  std::vector<const classroom::dialog_record*> todo;
  for (const auto& [id, r] : records)
    if (r.status == "ok" && scores.count(id) == 0)
      todo.push_back(&r);
  if (todo.empty())
    return scores;
  if (!model) {
    log::get("eval")->info("loading the reward model {} on {}", e.reward_model,
                           e.reward_model_device);
    model.emplace(models::reward_model::load(e.reward_model, device_of(e.reward_model_device),
                                             e.reward_model_max_length));
  }
  files::line_appender file(path);
  if (!file.try_lock())
    throw input_error(path.string(), "another pedagogy eval is writing this file",
                      "wait for it to finish, or choose another --out");
  progress shown(fmt::format("Ped-RM {}", label), static_cast<int64_t>(records.size()),
                 static_cast<int64_t>(records.size() - todo.size()));
  for (const auto* r : todo) {
    if (signals::stop_requested() != 0)
      break;
    std::vector<std::vector<models::chat_message>> conversations;
    for (const auto& input : classroom::ped_rm_inputs(prompts, r->problem, r->messages)) {
      std::vector<models::chat_message> c;
      for (const auto& m : input.conversation)
        c.push_back({m.role, m.content});
      conversations.push_back(std::move(c));
    }
    rm_scores s;
    json values = json::array();
    for (const auto& one : model->score(conversations)) {
      s.scores.push_back(one.value);
      values.push_back(one.value);
      s.truncated += one.truncated ? 1 : 0;
    }
    file.append(json{{"id", r->id}, {"scores", values}, {"truncated", s.truncated}}.dump());
    scores[r->id] = std::move(s);
    shown.add(false);
  }
  file.close();
  shown.finish();
  return scores;
}

// ---- tables ----------------------------------------------------------------------------------

json metric_json(const classroom::metric& m) {
  if (m.count == 0)
    return nullptr;
  return {{"mean", m.mean}, {"ci95", m.ci95}, {"count", m.count}};
}

void write_tables(const fs::path& out, const json& manifest, const json& rows,
                  const std::string& markdown) {
  files::write_atomically(out / "results.json",
                          json{{"evaluation", manifest}, {"rows", rows}}.dump(2) + "\n");
  files::write_atomically(out / "results.md", markdown);
}

std::vector<dialog_job> attempt_jobs(const std::vector<classroom::problem>& problems,
                                     uint64_t seed) {
  std::vector<int64_t> all(problems.size());
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = static_cast<int64_t>(i);
  auto jobs = make_jobs(0, problems, all, 1, derive_seed(seed, 0xA77E));
  for (auto& job : jobs)
    job.attempt_only = true;
  return jobs;
}

int stopped_exit(const std::string& out) {
  const int signal = signals::stop_requested();
  std::cerr << fmt::format("stopped by signal {}: what finished is in {}; --resume completes it\n",
                           signal, out);
  return signals::exit_code_for(signal != 0 ? signal : SIGINT);
}

} // namespace

eval_tutor parse_tutor_spec(const std::string& spec, const config::role_config& base) {
  const std::string where = fmt::format("flag --tutor '{}'", spec);
  std::string label, target = spec;
  const auto at = spec.find('@');
  const auto eq = spec.find('=');
  if (eq != std::string::npos && (at == std::string::npos || eq < at)) {
    label = spec.substr(0, eq);
    target = spec.substr(eq + 1);
    if (!plain_label(label))
      throw input_error(where, fmt::format("the label '{}' is not a plain name", label),
                        "use letters, digits, '.', '_' and '-'; it names the row and a folder");
  }
  if (target.empty())
    throw input_error(where, "no model after the label",
                      "give a model directory or SERVED_NAME@http://HOST:PORT/v1");
  eval_tutor t{label, base};
  t.role.init.clear(); // a tutor under test must exist
  const auto at_target = target.find('@');
  if (at_target != std::string::npos) {
    const auto name = target.substr(0, at_target), url = target.substr(at_target + 1);
    if (name.empty() || !(url.starts_with("http://") || url.starts_with("https://")))
      throw input_error(where, "an endpoint is SERVED_NAME@http(s)://HOST:PORT/v1",
                        "e.g. Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1");
    t.role.backend = config::backend_kind::openai;
    t.role.model = name;
    t.role.openai.model = name;
    t.role.openai.base_url = url;
    if (t.label.empty())
      t.label = label_of(fs::path(name).filename().string());
  } else {
    t.role.backend = config::backend_kind::engine;
    t.role.model = target;
    t.role.openai = {};
    if (t.label.empty())
      t.label = label_for_dir(target);
  }
  if (!plain_label(t.label))
    throw input_error(where, "no usable label can be derived", "give one: LABEL=MODEL");
  return t;
}

int run_evaluation(const config::config& given, const eval_run_options& opts) {
  auto cfg = given;
  auto logger = log::get("eval");
  if (cfg.cluster.mode == config::cluster_mode::mpi)
    throw input_error("cluster.mode", "pedagogy eval runs in one process",
                      "set cluster.mode = \"local\"; serve large models behind an "
                      "OpenAI-compatible endpoint (backend = \"openai\") to spread them out");
  if (!opts.solve && !cfg.classroom.ignore_rejected_judge) {
    logger->info("evaluating in soft mode (classroom.ignore_rejected_judge = true), so that "
                 "every dialog gets every judge and its solutions");
    cfg.classroom.ignore_rejected_judge = true;
  }
  std::vector<eval_tutor> tutors = opts.tutors;
  if (tutors.empty()) {
    ensure_model(cfg.tutor, "tutor", static_cast<uint64_t>(cfg.train.seed));
    tutors.push_back({label_for_dir(cfg.tutor.model), cfg.tutor});
  }
  std::set<std::string> labels;
  for (const auto& t : tutors) {
    if (!labels.insert(t.label).second)
      throw input_error("flag --tutor", fmt::format("two tutors are labelled '{}'", t.label),
                        "give each its own label: LABEL=MODEL");
    if (t.role.backend == config::backend_kind::engine &&
        !fs::exists(fs::path(t.role.model) / "config.json"))
      throw input_error(fmt::format("tutor '{}'", t.label),
                        fmt::format("'{}' is not a model directory (no config.json)", t.role.model),
                        "give a Hugging Face model folder or a checkpoint (runs/X/checkpoints/"
                        "step-N), or SERVED_NAME@http://HOST:PORT/v1");
  }
  if (!opts.solve && !cfg.eval.reward_model.empty()) {
    // Before any model loads: a wrong directory fails now, not after hours of dialogs.
    const auto rm = models::model_config::load(cfg.eval.reward_model);
    if (rm.num_labels != 1)
      throw input_error((fs::path(cfg.eval.reward_model) / "config.json").string(),
                        rm.num_labels == 0 ? "is a causal LM, not a reward model"
                                           : fmt::format("has {} labels", rm.num_labels),
                        "eval.reward_model is a *ForSequenceClassification directory with one "
                        "label; `pedagogy init-model --head classification` writes a random one");
    device_of(cfg.eval.reward_model_device);
  }

  const std::string problems_path = opts.problems.empty() ? cfg.eval.problems : opts.problems;
  const auto seed = static_cast<uint64_t>(cfg.train.seed);
  auto problems =
    classroom::load_problems(problems_path, {cfg.data.problem_field, cfg.data.answer_field},
                             opts.limit > 0 ? opts.limit : cfg.eval.max_problems, seed);
  if (problems.empty())
    throw input_error(problems_path, "no problems", "the file has no rows");
  auto setup = make_classroom_setup(cfg);
  std::optional<classroom::ped_rm_prompts> rm_prompts;
  if (!opts.solve && !cfg.eval.reward_model.empty())
    rm_prompts = classroom::ped_rm_prompts::load(cfg.classroom.templates_dir);
  const auto manifest = manifest_of(cfg, opts, tutors, problems_path, problems);
  claim_output(opts.out, manifest, opts.resume);
  for (const auto& t : tutors)
    fs::create_directories(opts.out / t.label);

  caf::actor_system_config system_config;
  configure_actor_system(system_config, cfg, false);
  caf::actor_system system{system_config};
  signals::install_stop_handlers();
  auto schedule = rollout_options_from(cfg);
  schedule.stop = [] {
    return signals::stop_requested() != 0;
  };
  const auto problems_total = static_cast<int64_t>(problems.size());
  bool some_tutor_failed_entirely = false;

  if (opts.solve) {
    json rows = json::array();
    std::vector<classroom::solve_row> table;
    const int64_t k = cfg.eval.solve_samples;
    for (const auto& t : tutors) {
      auto solve_cfg = cfg;
      solve_cfg.student = t.role; // the model under test answers the attempt prompt
      solve_cfg.classroom.number_student_attempts = k;
      auto solve_setup = make_classroom_setup(solve_cfg);
      role_generators g;
      g.student = spawn_role_generator(system, t.role, "tutor");
      auto result = run_phase(system, solve_setup, g, attempt_jobs(problems, seed),
                              opts.out / t.label / "solutions.jsonl",
                              fmt::format("solve {}", t.label), schedule);
      stop_generator(system, g.student);
      if (result.stopped || signals::stop_requested() != 0)
        return stopped_exit(opts.out.string());
      classroom::solve_row row;
      row.tutor = t.label;
      row.model = describe_model(t.role);
      row.k = k;
      std::vector<std::pair<int64_t, int64_t>> counts;
      for (const auto& [id, r] : result.records) {
        ++row.problems;
        if (r.status != "ok" || r.solutions.empty()) {
          ++row.failed;
          continue;
        }
        int64_t correct = 0;
        for (const auto& s : r.solutions)
          correct += s.correct ? 1 : 0;
        counts.emplace_back(static_cast<int64_t>(r.solutions.size()), correct);
      }
      if (!counts.empty()) {
        row.pass1 = classroom::pass_at_k(counts, 1);
        row.passk = classroom::pass_at_k(counts, std::min(k, counts.front().first));
      }
      some_tutor_failed_entirely |= row.failed == row.problems;
      rows.push_back({{"tutor", row.tutor},
                      {"model", row.model},
                      {"problems", row.problems},
                      {"failed", row.failed},
                      {"k", row.k},
                      {"pass@1", metric_json(row.pass1)},
                      {fmt::format("pass@{}", row.k), metric_json(row.passk)}});
      table.push_back(std::move(row));
    }
    const auto markdown = classroom::markdown_table(table);
    write_tables(opts.out, manifest, rows, markdown);
    std::cout << markdown
              << fmt::format("\nwrote {} and {}\n", (opts.out / "results.md").string(),
                             (opts.out / "results.json").string());
    return some_tutor_failed_entirely ? 1 : 0;
  }

  // The student and judges, shared by every tutor.
  ensure_model(cfg.student, "student", seed + 1);
  role_generators shared;
  shared.student = spawn_role_generator(system, cfg.student, "student");
  if (needs_judge_generator(cfg)) {
    ensure_model(cfg.judge, "judge", seed + 2);
    shared.judge = spawn_role_generator(system, cfg.judge, "judge");
  }

  // The student alone, once per problem: every tutor's Δ is measured against the same attempts.
  std::map<int64_t, double> pre;
  if (cfg.eval.pre_dialog_attempts) {
    auto result = run_phase(system, setup, shared, attempt_jobs(problems, seed),
                            opts.out / "pre_dialog.jsonl", "pre-dialog attempts", schedule);
    if (result.stopped || signals::stop_requested() != 0)
      return stopped_exit(opts.out.string());
    for (const auto& [id, r] : result.records)
      if (r.status == "ok" && r.reward.solve_rate)
        pre[r.problem_index] = *r.reward.solve_rate;
  }

  std::vector<int64_t> all(problems.size());
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = static_cast<int64_t>(i);
  std::optional<models::reward_model> reward_model;
  json rows = json::array();
  std::vector<classroom::eval_row> table;
  for (const auto& t : tutors) {
    auto g = shared;
    g.tutor = spawn_role_generator(system, t.role, "tutor");
    auto result =
      run_phase(system, setup, g, make_jobs(0, problems, all, cfg.eval.samples_per_problem, seed),
                opts.out / t.label / "dialogs.jsonl", fmt::format("eval {}", t.label), schedule);
    stop_generator(system, g.tutor);
    if (result.stopped || signals::stop_requested() != 0)
      return stopped_exit(opts.out.string());
    std::map<std::string, rm_scores> scores;
    if (rm_prompts) {
      scores = score_dialogs(result.records, opts.out / t.label / "ped_rm.jsonl", t.label,
                             *rm_prompts, reward_model, cfg.eval);
      if (signals::stop_requested() != 0)
        return stopped_exit(opts.out.string());
    }
    std::vector<classroom::dialog_eval> evals;
    int64_t truncated = 0;
    for (const auto& [id, r] : result.records) {
      std::optional<double> p;
      if (auto it = pre.find(r.problem_index); it != pre.end())
        p = it->second;
      auto e = classroom::to_eval(r, p);
      if (auto it = scores.find(id); it != scores.end()) {
        e.ped_rm = it->second.scores;
        e.ped_rm_scored = true;
        truncated += it->second.truncated;
      }
      evals.push_back(std::move(e));
    }
    classroom::eval_row row{t.label, describe_model(t.role), classroom::summarize(evals)};
    const auto& s = row.summary;
    some_tutor_failed_entirely |= s.failed == s.dialogs;
    if (s.failed > 0)
      logger->warn("{}: {} of {} dialogs failed (see {}); they are left out of the metrics and "
                   "--resume runs them again",
                   t.label, s.failed, s.dialogs, (opts.out / t.label / "dialogs.jsonl").string());
    if (truncated > 0)
      logger->warn("{}: {} tutor turns were longer than eval.reward_model_max_length and were "
                   "scored on their last tokens",
                   t.label, truncated);
    rows.push_back({{"tutor", row.tutor},
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
                    {"ped_rm_macro", metric_json(s.ped_rm_macro)}});
    table.push_back(std::move(row));
  }
  const auto markdown = classroom::markdown_table(table);
  write_tables(opts.out, manifest, rows, markdown);
  std::cout << markdown
            << fmt::format("\n{} problems x {} dialogs per tutor; wrote {} and {}\n",
                           problems_total, cfg.eval.samples_per_problem,
                           (opts.out / "results.md").string(),
                           (opts.out / "results.json").string());
  return some_tutor_failed_entirely ? 1 : 0;
}

} // namespace pedagogy::actors
