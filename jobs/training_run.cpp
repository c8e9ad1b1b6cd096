// Preparing a training run (see training_run.hpp): the run folder, resume and the problems.
#include "jobs/training_run.hpp"

#include "actors/inspector_actor.hpp"
#include "actors/learner_actor.hpp"
#include "actors/replica_router.hpp"
#include "actors/rollout.hpp"
#include "classroom/problems.hpp"
#include "collectives/weight_channel.hpp"
#include "config/config.hpp"
#include "jobs/memory_plan.hpp"
#include "jobs/preflight.hpp"
#include "jobs/setup.hpp"
#include "run/checkpoints.hpp"
#include "run/run_folder.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/ranks.hpp"
#include "runtime/signals.hpp"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace pedagogy::actors {

namespace fs = std::filesystem;

namespace {

// `--resume step-N`: the checkpoint named "step-N", "N" or by its folder.
checkpoint_entry choose_checkpoint(const std::vector<checkpoint_entry>& found,
                                   const std::string& wanted, const fs::path& ckpt_dir) {
  std::string names;
  for (const auto& c : found) {
    const auto name = c.dir.filename().string();
    if (wanted == name || wanted == std::to_string(c.step) ||
        wanted == fmt::format("step-{}", c.step) ||
        fs::weakly_canonical(fs::absolute(wanted)) == fs::weakly_canonical(fs::absolute(c.dir)))
      return c;
    names += (names.empty() ? "" : ", ") + name;
  }
  throw input_error("flag --resume",
                    fmt::format("no checkpoint '{}' in {}", wanted, ckpt_dir.string()),
                    fmt::format("the checkpoints there: {}", names));
}

// Keys whose change makes a resumed run a different run: its groups, problems, models or reward.
bool changes_meaning(const std::string& key) {
  static const char* const keys[] = {"train.samples_per_problem",
                                     "train.problems_per_step",
                                     "train.seed",
                                     "tutor.model",
                                     "student.model",
                                     "judge.model",
                                     "judge.backend",
                                     "data.train",
                                     "data.max_problems",
                                     "data.problem_field",
                                     "data.answer_field",
                                     "data.shuffle",
                                     "classroom.rejection_penalty",
                                     "classroom.judge_rules",
                                     "classroom.ignore_rejected_judge",
                                     "classroom.number_student_attempts",
                                     "ped.mode",
                                     "ped.policy"};
  for (const char* k : keys)
    if (key == k)
      return true;
  return key.rfind("reward.", 0) == 0;
}

// Refuses a resume whose config changes the run's meaning, naming every such key.
void refuse_changed_meaning(const fs::path& checkpoint, const std::string& resolved_toml) {
  const auto state_path = checkpoint / "trainer_state.json";
  const auto state = nlohmann::json::parse(files::read_regular_file(state_path), nullptr, false);
  if (!state.is_object() || !state.contains("config") || !state["config"].is_string())
    return; // checkpoint_problem() vouched for the file; an older one may lack the config
  std::vector<std::string> changed;
  for (const auto& d : config::differences(resolved_toml, state["config"].get<std::string>()))
    if (changes_meaning(d.substr(0, d.find(':'))))
      changed.push_back(d);
  if (changed.empty())
    return;
  throw input_error(
    state_path.string(),
    fmt::format("--resume with a config that changes what the run means ({} key(s), now vs the "
                "checkpoint):\n  {}",
                changed.size(), fmt::join(changed, "\n  ")),
    "resume with the checkpoint's values (its config is in the run folder's config.toml), or start "
    "a new run: --force, or another logging.run_dir");
}

// Where a run starts: after step `step` of checkpoint `dir`, or at 0 with no dir.
struct resume_point {
  int64_t step = 0;
  fs::path dir;
};

// What to continue from, decided before anything is written: the chosen checkpoint, else the
// newest intact one; none for a fresh start (refused when the folder holds an earlier run).
resume_point choose_start(const fs::path& run_dir, const fs::path& ckpt_dir,
                          const std::string& resolved_toml, const train_options& opts,
                          std::vector<std::string>& notes) {
  resume_point at;
  int64_t& start_step = at.step;
  fs::path& resume_dir = at.dir;
  if (opts.resume) {
    auto found = list_checkpoints(ckpt_dir);
    if (found.empty())
      throw input_error(ckpt_dir.string(), "no checkpoint to resume from",
                        "run without --resume to start, or point checkpoint.dir at the run");
    if (!opts.resume_from.empty()) {
      const auto chosen = choose_checkpoint(found, opts.resume_from, ckpt_dir);
      if (auto problem = checkpoint_problem(chosen.dir); !problem.empty())
        throw input_error(chosen.dir.string(), "the checkpoint is damaged: " + problem,
                          "resume from another one (--resume alone takes the newest intact one)");
      found = {chosen};
    }
    std::string broken;
    for (auto it = found.rbegin(); it != found.rend() && resume_dir.empty(); ++it) {
      if (auto problem = checkpoint_problem(it->dir); !problem.empty()) {
        notes.push_back(fmt::format("checkpoint {} is damaged ({}); trying an older one",
                                    it->dir.string(), problem));
        broken = problem;
        continue;
      }
      start_step = it->step;
      resume_dir = it->dir;
    }
    if (resume_dir.empty())
      throw input_error(ckpt_dir.string(), "every checkpoint is damaged; the newest: " + broken,
                        "start over with --force, or restore a checkpoint from a copy");
    refuse_changed_meaning(resume_dir, resolved_toml);
  } else if ((non_empty(run_dir / "metrics.jsonl") || !list_checkpoints(ckpt_dir).empty()) &&
             !opts.force) {
    throw input_error(run_dir.string(), "the run folder holds an earlier run (metrics.jsonl)",
                      "pass --resume to continue it, --force to start over, or choose another "
                      "logging.run_dir");
  }

  return at;
}

// One run per folder: a second one refuses here instead of deleting the first one's files.
void lock_run(prepared_run& run, const fs::path& run_dir, const fs::path& ckpt_dir) {
  fs::create_directories(run_dir);
  run.lock = std::make_unique<run_lock>(run_dir);
  // Two runs with their own run folders but one checkpoint.dir would overwrite each other's
  // step-N folders: the checkpoint folder is locked too when it lies elsewhere.
  if (fs::weakly_canonical(fs::absolute(ckpt_dir)) != fs::weakly_canonical(fs::absolute(run_dir))) {
    fs::create_directories(ckpt_dir);
    run.checkpoint_lock = std::make_unique<run_lock>(ckpt_dir);
  }
}

// The input is good: only now is anything deleted. Starting over deletes only this program's
// outputs, and nothing at all when the folder holds anything else.
void clear_for_start(const run_layout& layout, const train_options& opts, int64_t start_step,
                     std::vector<std::string>& notes) {
  const fs::path& ckpt_dir = layout.checkpoint_dir;
  if (const auto removed = remove_temporaries(ckpt_dir); removed > 0)
    notes.push_back(
      fmt::format("removed {} unfinished checkpoint folder(s) in {}", removed, ckpt_dir.string()));
  if (opts.force && !opts.resume)
    clear_run_outputs(layout);
  // Resuming from an older checkpoint rewrites what came after it: the newer checkpoints go too,
  // as their metrics and dialogs do, or a later --resume would continue that abandoned history.
  if (opts.resume)
    for (const auto& later : list_checkpoints(ckpt_dir))
      if (later.step > start_step) {
        fs::remove_all(later.dir);
        notes.push_back(
          fmt::format("removed {}: newer than the checkpoint resumed from", later.dir.string()));
      }
}

// The log file, the resolved config, and metrics and dialogs cut to the steps the run starts
// after; the notes gathered so far go to the log.
void start_files(const config::config& cfg, const std::string& resolved_toml,
                 const train_options& opts, const resume_point& at,
                 const std::vector<std::string>& notes) {
  const fs::path run_dir = cfg.logging.run_dir;
  const int64_t start_step = at.step;
  const fs::path& resume_dir = at.dir;
  if (cfg.logging.log_file) {
    log::options lo;
    lo.levels = cfg.logging.level;
    lo.file = (run_dir / "pedagogy.log").string();
    log::setup(lo);
  }
  auto logger = log::get("trainer");
  for (const auto& note : notes)
    logger->warn("{}", note);
  files::write_atomically(run_dir / "config.toml", resolved_toml);
  // The files hold exactly the steps the run starts after: a run stopped before its first
  // checkpoint (or its first metrics line) left records of a step that is now done again.
  keep_steps_before(run_dir / "metrics.jsonl", start_step + 1); // steps 1..start_step stay
  keep_steps_before(run_dir / "dialogs.jsonl", start_step + 1);
  if (opts.resume)
    logger->info("resuming from {} (step {})", resume_dir.string(), start_step);
}

} // namespace

prepared_run prepare_run(const config::config& cfg, const std::string& resolved_toml,
                         const train_options& opts) {
  const auto& t = cfg.train;
  const fs::path run_dir = cfg.logging.run_dir;
  const fs::path ckpt_dir =
    cfg.checkpoint.dir.empty() ? run_dir / "checkpoints" : fs::path(cfg.checkpoint.dir);
  prepared_run run;
  run.run_dir = run_dir;
  run.checkpoint_dir = ckpt_dir;
  const run_layout layout{run_dir, ckpt_dir, {cfg.tutor.model, cfg.student.model, cfg.judge.model}};

  std::vector<std::string> notes; // said once the log file is set up

  const resume_point at = choose_start(run_dir, ckpt_dir, resolved_toml, opts, notes);
  const int64_t start_step = at.step;
  const fs::path& resume_dir = at.dir;

  // The same seeded sample as `pedagogy rollout` takes with this config.
  auto problems =
    classroom::load_problems(cfg.data.train, {cfg.data.problem_field, cfg.data.answer_field},
                             cfg.data.max_problems, static_cast<uint64_t>(t.seed));
  const int64_t per_step = t.problems_per_step;
  const auto steps_per_epoch = static_cast<int64_t>(problems.size()) / per_step;
  if (steps_per_epoch == 0)
    throw input_error(cfg.data.train,
                      fmt::format("{} problems, fewer than train.problems_per_step = {}",
                                  problems.size(), per_step),
                      "lower train.problems_per_step or add problems");
  // Templates too: nothing is written before the input is known to be good.
  make_classroom_setup(cfg);

  const int64_t total_steps = t.max_steps > 0 ? t.max_steps : t.epochs * steps_per_epoch;
  if (start_step > total_steps)
    throw input_error(resume_dir.string(),
                      fmt::format("the checkpoint is of step {}, past the run's last step {}",
                                  start_step, total_steps),
                      fmt::format("raise train.max_steps (or train.epochs) above {} to train on, "
                                  "or start over with --force",
                                  start_step));
  if (!opts.resume)
    refuse_models_in_checkpoints(layout);

  lock_run(run, run_dir, ckpt_dir);
  clear_for_start(layout, opts, start_step, notes);
  start_files(cfg, resolved_toml, opts, at, notes);
  run.problems = std::move(problems);
  run.steps_per_epoch = steps_per_epoch;
  run.total_steps = total_steps;
  run.start_step = start_step;
  run.resume_dir = resume_dir;
  return run;
}

config::role_config on_rank(config::role_config role, const ranks::rank_info& rank) {
  if (role.device == "auto")
    role.device = rank.device;
  return role;
}

learner_setup learner_setup_from(const config::config& cfg, const fs::path& resume,
                                 const std::string& device, int64_t total_steps) {
  learner_setup ls;
  ls.model = cfg.tutor.model;
  ls.resume = resume;
  ls.device = device;
  ls.options = learner_options_from(cfg, total_steps);
  ls.spike = spike_options_from(cfg);
  return ls;
}

job_actors assemble_job(caf::actor_system& system, const config::config& cfg,
                        const role_actors& found, const std::vector<ranks::rank_info>& world,
                        actor_stopper& stop) {
  job_actors actors;
  for (const auto& [role, handles] : found.by_role)
    for (const auto& [index, a] : handles) {
      const auto it = found.rank_of.find({role, index});
      const int r = it == found.rank_of.end() ? 0 : it->second;
      const auto& where = world[static_cast<size_t>(r)];
      const auto& role_cfg = role == "student" ? cfg.student
                             : role == "judge" ? cfg.judge
                                               : cfg.tutor;
      actors.inspected.push_back({{role, index, r, where.node, on_rank(role_cfg, where).device,
                                   role == "learner" ? "learner" : "generator"},
                                  a});
    }
  auto replicas_of = [&](const std::string& role) {
    std::vector<caf::actor> out;
    if (const auto it = found.by_role.find(role); it != found.by_role.end())
      for (const auto& [index, a] : it->second)
        out.push_back(a);
    return out;
  };
  for (const auto& a : replicas_of("learner"))
    actors.learners.push_back(caf::actor_cast<learner_actor>(a));
  for (const auto& a : replicas_of("tutor"))
    actors.tutors.push_back(caf::actor_cast<generator_actor>(a));
  // One handle per role for the conversations: the replica itself, or a router over several.
  auto role_handle = [&](const std::string& role) -> generator_actor {
    std::vector<generator_actor> replicas;
    for (const auto& a : replicas_of(role))
      replicas.push_back(caf::actor_cast<generator_actor>(a));
    if (replicas.size() <= 1)
      return replicas.empty() ? generator_actor{} : replicas.front();
    auto router = spawn_replica_router(system, role, replicas, request_timeout_of(cfg));
    stop.actors.push_back(caf::actor_cast<caf::actor>(router));
    log::get("cluster")->info("{}: {} replicas behind a session-affine, least-loaded router", role,
                              replicas.size());
    return router;
  };
  actors.generators.tutor = role_handle("tutor");
  actors.generators.student = role_handle("student");
  actors.generators.judge = role_handle("judge");
  const bool solver = cfg.ped.policy == config::ped_policy::solver; // talks to nobody
  PEDAGOGY_CHECK(actors.generators.tutor && (actors.generators.student || solver) &&
                   !actors.learners.empty(),
                 "the job was assembled without a tutor, student or learner");
  return actors;
}

} // namespace pedagogy::actors
