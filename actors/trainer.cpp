// A training job in one process, and the preparation of a run that both modes share (see
// trainer.hpp; the step loop itself is the trainer actor, trainer_actor.cpp).
#include "actors/trainer.hpp"

#include "actors/checkpoints.hpp"
#include "actors/inspector_actor.hpp"
#include "actors/learner_actor.hpp"
#include "actors/memory_plan.hpp"
#include "actors/preflight.hpp"
#include "actors/rollout.hpp"
#include "actors/run_folder.hpp"
#include "actors/setup.hpp"
#include "actors/training_run.hpp"
#include "classroom/problems.hpp"
#include "config/config.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/ranks.hpp"
#include "runtime/signals.hpp"
#include "runtime/weight_channel.hpp"

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

} // namespace

prepared_run prepare_run(const config::config& cfg, const std::string& resolved_toml,
                         const train_options& opts) {
  const auto& t = cfg.train;
  const fs::path run_dir = cfg.logging.run_dir;
  const fs::path ckpt_dir =
    cfg.checkpoint.dir.empty() ? run_dir / "checkpoints" : fs::path(cfg.checkpoint.dir);
  const fs::path metrics_path = run_dir / "metrics.jsonl";
  const fs::path dialogs_path = run_dir / "dialogs.jsonl";
  prepared_run run;
  run.run_dir = run_dir;
  run.checkpoint_dir = ckpt_dir;
  const run_layout layout{run_dir, ckpt_dir, {cfg.tutor.model, cfg.student.model, cfg.judge.model}};

  std::vector<std::string> notes; // said once the log file is set up

  // What to continue from, decided before anything is written: the chosen checkpoint, else the
  // newest intact one.
  int64_t start_step = 0;
  fs::path resume_dir;
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
  } else if ((non_empty(metrics_path) || !list_checkpoints(ckpt_dir).empty()) && !opts.force) {
    throw input_error(run_dir.string(), "the run folder holds an earlier run (metrics.jsonl)",
                      "pass --resume to continue it, --force to start over, or choose another "
                      "logging.run_dir");
  }

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

  // One run per folder: a second one refuses here instead of deleting the first one's files.
  fs::create_directories(run_dir);
  run.lock = std::make_unique<run_lock>(run_dir);
  // Two runs with their own run folders but one checkpoint.dir would overwrite each other's
  // step-N folders: the checkpoint folder is locked too when it lies elsewhere.
  if (fs::weakly_canonical(fs::absolute(ckpt_dir)) != fs::weakly_canonical(fs::absolute(run_dir))) {
    fs::create_directories(ckpt_dir);
    run.checkpoint_lock = std::make_unique<run_lock>(ckpt_dir);
  }

  // The input is good: only now is anything deleted. Starting over deletes only this program's
  // outputs, and nothing at all when the folder holds anything else.
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
  keep_steps_before(metrics_path, start_step + 1); // steps 1..start_step stay
  keep_steps_before(dialogs_path, start_step + 1);
  if (opts.resume)
    logger->info("resuming from {} (step {})", resume_dir.string(), start_step);
  run.problems = std::move(problems);
  run.steps_per_epoch = steps_per_epoch;
  run.total_steps = total_steps;
  run.start_step = start_step;
  run.resume_dir = resume_dir;
  return run;
}

int train(const config::config& cfg, const std::string& resolved_toml, const train_options& opts) {
  if (ranks::launched_by_mpi() || cfg.cluster.mode == config::cluster_mode::mpi)
    return train_multi_rank(cfg, resolved_toml, opts);
  // Mistakes the disk, the network or another process can tell now, before minutes of loading.
  check_before_loading(cfg);
  // Refuses multi-rank knobs in one process, and a plan that does not fit the device.
  const auto where = plan_placement(cfg, 1);
  check_inspect_config(cfg.inspect);
  const auto memory = plan_memory(
    cfg, where, shapes_from_config(cfg),
    [&](int) { return device_capacity_bytes(cfg, cfg.tutor.device); }, at::hasCUDA());
  log::get("trainer")->info("memory plan:\n{}", memory.table());
  check_memory_plan(memory);
  auto run = prepare_run(cfg, resolved_toml, opts);
  if (cfg.cluster.torch_threads > 0)
    at::set_num_threads(static_cast<int>(cfg.cluster.torch_threads));

  caf::actor_system_config sc;
  configure_actor_system(sc, cfg, false);
  caf::actor_system system{sc};
  actor_stopper stopper;
  // One taker (the tutor generator), and nobody waits longer for weights than for any request.
  auto channel = std::make_shared<local_weight_channel>(1, request_timeout_of(cfg));
  const auto seed = static_cast<uint64_t>(cfg.train.seed);
  ensure_model(cfg.tutor, "tutor", seed);
  // A trained solver (ped.policy = "solver") talks to nobody: no student, no judges.
  const bool solver = cfg.ped.policy == config::ped_policy::solver;
  if (!opts.make_student && !solver)
    ensure_model(cfg.student, "student", seed + 1);

  // The tutor generator starts from the checkpoint's weights when resuming.
  auto tutor_cfg = cfg.tutor;
  if (!run.resume_dir.empty())
    tutor_cfg.model = run.resume_dir.string();
  job_actors actors;
  auto& generators = actors.generators;
  generators.tutor = spawn_role_generator(system, tutor_cfg, "tutor", channel);
  stopper.actors.push_back(caf::actor_cast<caf::actor>(generators.tutor));
  actors.tutors.push_back(generators.tutor);
  if (opts.make_student)
    generators.student = opts.make_student(system);
  else if (!solver)
    generators.student = spawn_role_generator(system, cfg.student, "student");
  stopper.actors.push_back(caf::actor_cast<caf::actor>(generators.student));
  if (needs_judge_generator(cfg) && !solver) {
    ensure_model(cfg.judge, "judge", seed + 2);
    generators.judge = spawn_role_generator(system, cfg.judge, "judge");
    stopper.actors.push_back(caf::actor_cast<caf::actor>(generators.judge));
  }

  learner_setup ls;
  ls.model = cfg.tutor.model;
  ls.resume = run.resume_dir;
  ls.device = cfg.tutor.device;
  ls.weights = channel;
  ls.options = learner_options_from(cfg, run.total_steps);
  ls.spike = spike_options_from(cfg);
  actors.learners.push_back(spawn_learner(system, ls));
  stopper.actors.push_back(caf::actor_cast<caf::actor>(actors.learners.front()));
  if (cfg.ped.mode != config::ped_mode::off) {
    // The ped_teacher's generator: the tutor's initial weights, or the checkpoint's ped_teacher
    // when a rounds run resumes. In rounds mode its own learner (its own optimizer, no reference
    // model) feeds it through a channel of their own.
    const bool rounds = cfg.ped.mode == config::ped_mode::rounds;
    auto teacher_cfg = cfg.tutor;
    if (rounds && !run.resume_dir.empty())
      teacher_cfg.model = (run.resume_dir / "ped_teacher").string();
    auto teacher_channel =
      rounds ? std::make_shared<local_weight_channel>(1, request_timeout_of(cfg)) : nullptr;
    actors.ped_teacher_generator =
      spawn_role_generator(system, teacher_cfg, "ped_teacher", teacher_channel);
    stopper.actors.push_back(caf::actor_cast<caf::actor>(actors.ped_teacher_generator));
    if (rounds) {
      learner_setup teacher = ls;
      teacher.weights = teacher_channel;
      if (!run.resume_dir.empty())
        teacher.resume = run.resume_dir / "ped_teacher";
      teacher.options.grpo.beta = 0;
      if (cfg.ped.teacher_learning_rate > 0)
        teacher.options.learning_rate = cfg.ped.teacher_learning_rate;
      actors.ped_teacher = spawn_learner(system, teacher);
      stopper.actors.push_back(caf::actor_cast<caf::actor>(actors.ped_teacher));
    }
  }
  // Everything runs here, rank 0 of one.
  const auto node = ranks::this_process().node;
  auto watch = [&](const std::string& role, const std::string& device, caf::actor handle,
                   const char* kind) {
    if (handle)
      actors.inspected.push_back({role, 0, 0, node, device, kind, std::move(handle)});
  };
  watch("tutor", cfg.tutor.device, caf::actor_cast<caf::actor>(generators.tutor), "generator");
  watch("student", cfg.student.device, caf::actor_cast<caf::actor>(generators.student),
        "generator");
  watch("judge", cfg.judge.device, caf::actor_cast<caf::actor>(generators.judge), "generator");
  watch("learner", cfg.tutor.device, caf::actor_cast<caf::actor>(actors.learners.front()),
        "learner");
  watch("ped_teacher", cfg.tutor.device, caf::actor_cast<caf::actor>(actors.ped_teacher_generator),
        "generator");
  watch("ped_teacher_learner", cfg.tutor.device, caf::actor_cast<caf::actor>(actors.ped_teacher),
        "learner");
  const int code = run_steps(system, cfg, resolved_toml, run, actors);
  if (signals::stop_requested() != 0)
    signals::exit_now(code); // everything is on disk; requests in flight are not waited for
  return code;
}

} // namespace pedagogy::actors
