// `pedagogy eval` (see eval.hpp).
#include "jobs/eval.hpp"

#include "actors/rollout.hpp"
#include "classroom/eval_metrics.hpp"
#include "classroom/problems.hpp"
#include "classroom/record.hpp"
#include "classroom/views.hpp"
#include "inspect/progress.hpp"
#include "jobs/eval_files.hpp"
#include "jobs/eval_tutors.hpp"
#include "jobs/placement.hpp"
#include "jobs/preflight.hpp"
#include "jobs/setup.hpp"
#include "models/ped/reward_model.hpp"
#include "models/tensor/device.hpp"
#include "models/weights/model_config.hpp"
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
  auto logger = log::get("eval");
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
    logger->info("{}: all {} done already", what, total);
    return out;
  }
  if (already > 0)
    logger->info("{}: {} of {} done already, running the other {}", what, already, total,
                 pending.size());
  files::line_appender file(path);
  progress_line shown(total, already);
  int64_t done = already, failed = 0;
  auto results = run_rollout(
    system, std::move(setup), generators, std::move(pending),
    [&](const dialog_result& r) {
      file.append(classroom::to_json_line(r.record));
      ++done;
      if (r.record.status != "ok") {
        ++failed;
        logger->warn("{} {} failed: {}", what, r.record.id, r.record.error);
      }
      shown.update(done, fmt::format("{} {}/{} | failed {}", what, done, total, failed));
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

at::Device device_of(const std::string& name) {
  return models::device_from_config(name, "eval.reward_model_device");
}

// ---- the run ---------------------------------------------------------------------------------

class evaluation {
public:
  evaluation(const config::config& cfg, const eval_run_options& opts)
    : cfg_(cfg), opts_(opts), logger_(log::get("eval")) {}

  int run() {
    check_inputs();
    const std::string problems_path = opts_.problems.empty() ? cfg_.eval.problems : opts_.problems;
    problems_ =
      classroom::load_problems(problems_path, {cfg_.data.problem_field, cfg_.data.answer_field},
                               opts_.limit > 0 ? opts_.limit : cfg_.eval.max_problems, seed());
    if (problems_.empty())
      throw input_error(problems_path, "no problems", "the file has no rows");
    setup_ = make_classroom_setup(cfg_);
    if (!opts_.solve && !cfg_.eval.reward_model.empty())
      rm_prompts_ = classroom::ped_rm_prompts::load(cfg_.classroom.templates_dir);
    manifest_ = manifest(problems_path);
    claim_output(opts_.out, manifest_, opts_.resume);
    for (const auto& t : tutors_)
      fs::create_directories(opts_.out / t.label);

    caf::actor_system_config system_config;
    configure_actor_system(system_config, cfg_, false);
    caf::actor_system system{system_config};
    signals::install_stop_handlers();
    schedule_ = rollout_options_from(cfg_);
    schedule_.stop = [] {
      return signals::stop_requested() != 0;
    };
    const auto code = opts_.solve ? solve(system) : dialogs(system);
    if (signals::stop_requested() != 0) {
      const int signal = signals::stop_requested();
      std::cerr << fmt::format(
        "stopped by signal {}: what finished is in {}; --resume completes it\n", signal,
        opts_.out.string());
      return signals::exit_code_for(signal);
    }
    return code;
  }

private:
  uint64_t seed() const {
    return static_cast<uint64_t>(cfg_.train.seed);
  }

  // Everything that can be wrong with the input fails here, before any model is loaded.
  void check_inputs() {
    if (cfg_.cluster.mode == config::cluster_mode::mpi)
      throw input_error("cluster.mode", "pedagogy eval runs in one process",
                        "set cluster.mode = \"local\"; serve large models behind an "
                        "OpenAI-compatible endpoint (backend = \"openai\") to spread them out");
    if (!opts_.solve && !cfg_.classroom.ignore_rejected_judge) {
      logger_->info("evaluating in soft mode (classroom.ignore_rejected_judge = true), so that "
                    "every dialog gets every judge and its solutions");
      cfg_.classroom.ignore_rejected_judge = true;
    }
    // The models, devices and endpoints, before anything is made or loaded.
    // (A --tutor folder is checked below, with its own hint.)
    for (const auto& t : opts_.tutors)
      if (t.role.backend == config::backend_kind::openai)
        check_role_before_loading(t.role, "tutor");
      else
        models::device_from_config(t.role.device, "tutor.device");
    if (opts_.tutors.empty())
      check_role_before_loading(cfg_.tutor, "tutor");
    if (!opts_.solve) {
      check_role_before_loading(cfg_.student, "student");
      if (needs_judge_generator(cfg_))
        check_role_before_loading(cfg_.judge, "judge");
    }
    tutors_ = opts_.tutors;
    if (tutors_.empty()) {
      ensure_model(cfg_.tutor, "tutor", seed());
      tutors_.push_back({label_for_dir(cfg_.tutor.model), cfg_.tutor});
    }
    std::set<std::string> labels;
    for (const auto& t : tutors_) {
      if (!labels.insert(t.label).second)
        throw input_error("flag --tutor", fmt::format("two tutors are labelled '{}'", t.label),
                          "give each its own label: LABEL=MODEL");
      if (t.role.backend == config::backend_kind::engine &&
          !fs::exists(fs::path(t.role.model) / "config.json"))
        throw input_error(
          fmt::format("tutor '{}'", t.label),
          fmt::format("'{}' is not a model directory (no config.json)", t.role.model),
          "give a Hugging Face model folder or a checkpoint "
          "(runs/X/checkpoints/step-N), or SERVED_NAME@http://HOST:PORT/v1");
    }
    if (!opts_.solve && !cfg_.eval.reward_model.empty()) {
      const auto rm = models::model_config::load(cfg_.eval.reward_model);
      if (rm.num_labels != 1)
        throw input_error((fs::path(cfg_.eval.reward_model) / "config.json").string(),
                          rm.num_labels == 0 ? "is a causal LM, not a reward model"
                                             : fmt::format("has {} labels", rm.num_labels),
                          "eval.reward_model is a *ForSequenceClassification directory with one "
                          "label; `pedagogy init-model --head classification` writes a random "
                          "one");
      device_of(cfg_.eval.reward_model_device);
    }
  }

  json manifest(const std::string& problems_path) const {
    json t = json::array();
    for (const auto& tutor : tutors_)
      t.push_back({{"label", tutor.label}, {"model", describe_model(tutor.role)}});
    json m = {{"mode", opts_.solve ? "solve" : "dialog"},
              {"problems_file", problems_path},
              {"problems", problems_.size()},
              {"problems_digest", problems_digest(problems_)},
              {"seed", cfg_.train.seed},
              {"tutors", t}};
    if (opts_.solve) {
      m["solve_samples"] = cfg_.eval.solve_samples;
      return m;
    }
    m["samples_per_problem"] = cfg_.eval.samples_per_problem;
    m["student_attempts"] = cfg_.classroom.number_student_attempts;
    m["pre_dialog_attempts"] = cfg_.eval.pre_dialog_attempts;
    m["student"] = describe_model(cfg_.student);
    m["judge"] = cfg_.judge.backend == config::backend_kind::rule ? std::string("rule")
                                                                  : describe_model(cfg_.judge);
    m["reward_model"] = cfg_.eval.reward_model;
    return m;
  }

  bool stopped(const phase_result& r) const {
    return r.stopped || signals::stop_requested() != 0;
  }

  void write(const json& rows, const std::string& markdown, const std::string& trailer) const {
    write_tables(opts_.out, manifest_, rows, markdown);
    std::cout << markdown
              << fmt::format("\n{}wrote {} and {}\n", trailer, (opts_.out / "results.md").string(),
                             (opts_.out / "results.json").string());
  }

  // Plain solve accuracy: each tutor, in the student's place, answers the attempt prompt
  // eval.solve_samples times per problem.
  int solve(caf::actor_system& system) {
    const int64_t k = cfg_.eval.solve_samples;
    json rows = json::array();
    std::vector<classroom::solve_row> table;
    bool a_tutor_failed = false;
    for (const auto& t : tutors_) {
      auto solve_cfg = cfg_;
      solve_cfg.student = t.role;
      solve_cfg.classroom.number_student_attempts = k;
      role_generators g;
      g.student = spawn_role_generator(system, t.role, "tutor");
      auto result = run_phase(
        system, make_classroom_setup(solve_cfg), g, attempt_jobs(problems_, seed()),
        opts_.out / t.label / "solutions.jsonl", fmt::format("solve {}", t.label), schedule_);
      stop_generator(system, g.student);
      if (stopped(result))
        return 1;
      classroom::solve_row row;
      row.tutor = t.label;
      row.model = describe_model(t.role);
      row.k = k;
      std::vector<std::pair<int64_t, int64_t>> counts; // (samples, correct) per problem
      for (const auto& [id, r] : result.records) {
        ++row.problems;
        if (r.status != "ok" || r.solutions.empty()) {
          ++row.failed;
          continue;
        }
        const auto correct = std::count_if(r.solutions.begin(), r.solutions.end(),
                                           [](const auto& s) { return s.correct; });
        counts.emplace_back(static_cast<int64_t>(r.solutions.size()), correct);
      }
      if (!counts.empty()) {
        row.pass1 = classroom::pass_at_k(counts, 1);
        row.passk = classroom::pass_at_k(counts, std::min(k, counts.front().first));
      }
      a_tutor_failed |= row.failed == row.problems;
      rows.push_back(row_json(row));
      table.push_back(std::move(row));
    }
    write(rows, classroom::markdown_table(table), "");
    return a_tutor_failed ? 1 : 0;
  }

  // The reference's evaluation: the student alone once per problem, then each tutor's dialogs,
  // then the reward model's scores of its turns.
  int dialogs(caf::actor_system& system) {
    role_generators shared; // the student and judges, loaded once for every tutor
    ensure_model(cfg_.student, "student", seed() + 1);
    shared.student = spawn_role_generator(system, cfg_.student, "student");
    if (needs_judge_generator(cfg_)) {
      ensure_model(cfg_.judge, "judge", seed() + 2);
      shared.judge = spawn_role_generator(system, cfg_.judge, "judge");
    }
    std::map<int64_t, double> pre; // problem -> the student's solve rate alone
    if (cfg_.eval.pre_dialog_attempts) {
      auto result = run_phase(system, setup_, shared, attempt_jobs(problems_, seed()),
                              opts_.out / "pre_dialog.jsonl", "pre-dialog attempts", schedule_);
      if (stopped(result))
        return 1;
      for (const auto& [id, r] : result.records)
        if (r.status == "ok" && r.reward.solve_rate)
          pre[r.problem_index] = *r.reward.solve_rate;
    }
    std::vector<int64_t> all(problems_.size());
    for (size_t i = 0; i < all.size(); ++i)
      all[i] = static_cast<int64_t>(i);
    json rows = json::array();
    std::vector<classroom::eval_row> table;
    bool a_tutor_failed = false;
    for (const auto& t : tutors_) {
      auto g = shared;
      g.tutor = spawn_role_generator(system, t.role, "tutor");
      auto result = run_phase(
        system, setup_, g, make_jobs(0, problems_, all, cfg_.eval.samples_per_problem, seed()),
        opts_.out / t.label / "dialogs.jsonl", fmt::format("eval {}", t.label), schedule_);
      stop_generator(system, g.tutor);
      if (stopped(result))
        return 1;
      std::map<std::string, rm_scores> scores;
      if (rm_prompts_) {
        scores = score(result.records, t.label);
        if (signals::stop_requested() != 0)
          return 1;
      }
      auto row = summarize(t, result.records, pre, scores);
      a_tutor_failed |= row.summary.failed == row.summary.dialogs;
      rows.push_back(row_json(row));
      table.push_back(std::move(row));
    }
    write(rows, classroom::markdown_table(table),
          fmt::format("{} problems x {} dialogs per tutor; ", problems_.size(),
                      cfg_.eval.samples_per_problem));
    return a_tutor_failed ? 1 : 0;
  }

  classroom::eval_row summarize(const eval_tutor& t,
                                const std::map<std::string, classroom::dialog_record>& records,
                                const std::map<int64_t, double>& pre,
                                const std::map<std::string, rm_scores>& scores) const {
    std::vector<classroom::dialog_eval> evals;
    int64_t truncated = 0;
    for (const auto& [id, r] : records) {
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
    if (s.failed > 0)
      logger_->warn("{}: {} of {} dialogs failed (see {}); they are left out of the metrics and "
                    "--resume runs them again",
                    t.label, s.failed, s.dialogs, (opts_.out / t.label / "dialogs.jsonl").string());
    if (truncated > 0)
      logger_->warn("{}: {} tutor turns were longer than eval.reward_model_max_length and were "
                    "scored on their last tokens",
                    t.label, truncated);
    return row;
  }

  // The reward model's scores of every ok dialog's tutor turns, those of earlier runs read back
  // and the rest computed (the model loads on first need) and appended as they come.
  std::map<std::string, rm_scores>
  score(const std::map<std::string, classroom::dialog_record>& records, const std::string& label) {
    const auto path = opts_.out / label / "ped_rm.jsonl";
    auto scores = read_scores(path);
    std::vector<const classroom::dialog_record*> todo;
    for (const auto& [id, r] : records)
      if (r.status == "ok" && scores.count(id) == 0)
        todo.push_back(&r);
    if (todo.empty())
      return scores;
    const auto& e = cfg_.eval;
    if (!reward_model_) {
      logger_->info("loading the reward model {} on {}", e.reward_model, e.reward_model_device);
      reward_model_.emplace(models::reward_model::load(
        e.reward_model, device_of(e.reward_model_device), e.reward_model_max_length));
    }
    files::line_appender file(path);
    const auto total = static_cast<int64_t>(records.size());
    int64_t done = total - static_cast<int64_t>(todo.size());
    progress_line shown(total, done);
    for (const auto* r : todo) {
      if (signals::stop_requested() != 0)
        break;
      std::vector<std::vector<models::chat_message>> conversations;
      for (const auto& input : classroom::ped_rm_inputs(*rm_prompts_, r->problem, r->messages)) {
        std::vector<models::chat_message> c;
        for (const auto& m : input.conversation)
          c.push_back({m.role, m.content});
        conversations.push_back(std::move(c));
      }
      rm_scores s;
      for (const auto& one : reward_model_->score(conversations)) {
        s.scores.push_back(one.value);
        s.truncated += one.truncated ? 1 : 0;
      }
      file.append(rm_scores_line(r->id, s));
      scores[r->id] = std::move(s);
      ++done;
      shown.update(done, fmt::format("Ped-RM {} {}/{}", label, done, total));
    }
    file.close();
    shown.finish();
    return scores;
  }

  config::config cfg_;
  const eval_run_options& opts_;
  std::shared_ptr<spdlog::logger> logger_;
  std::vector<eval_tutor> tutors_;
  std::vector<classroom::problem> problems_;
  std::shared_ptr<const classroom_setup> setup_;
  std::optional<classroom::ped_rm_prompts> rm_prompts_;
  std::optional<models::reward_model> reward_model_;
  json manifest_;
  rollout_options schedule_;
};

} // namespace

int run_evaluation(const config::config& cfg, const eval_run_options& opts) {
  return evaluation(cfg, opts).run();
}

} // namespace pedagogy::actors
