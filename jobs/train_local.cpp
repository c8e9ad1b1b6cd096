// A training job in one process (see train_local.hpp; the step loop itself is the trainer actor,
// actors/trainer_loop.cpp).
#include "jobs/train_local.hpp"

#include "actors/inspector_actor.hpp"
#include "actors/learner_actor.hpp"
#include "actors/rollout.hpp"
#include "classroom/problems.hpp"
#include "collectives/weight_channel.hpp"
#include "config/config.hpp"
#include "jobs/memory_plan.hpp"
#include "jobs/preflight.hpp"
#include "jobs/setup.hpp"
#include "jobs/train_ranks.hpp"
#include "jobs/training_run.hpp"
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

namespace {

// Pedagogical RL's ped_teacher (one process only): its generator, at the tutor's initial weights
// or the checkpoint's ped_teacher when a rounds run resumes; in rounds mode also its own learner
// (its own optimizer, no reference model), which feeds it through a channel of their own.
void add_ped_teacher(caf::actor_system& system, const config::config& cfg, const prepared_run& run,
                     const learner_setup& tutor_learner, job_actors& actors,
                     actor_stopper& stopper) {
  const bool rounds = cfg.ped.mode == config::ped_mode::rounds;
  auto teacher_cfg = cfg.tutor;
  if (rounds && !run.resume_dir.empty())
    teacher_cfg.model = (run.resume_dir / "ped_teacher").string();
  auto teacher_channel =
    rounds ? std::make_shared<local_weight_channel>(1, request_timeout_of(cfg)) : nullptr;
  actors.ped_teacher_generator =
    spawn_role_generator(system, teacher_cfg, "ped_teacher", teacher_channel);
  stopper.actors.push_back(caf::actor_cast<caf::actor>(actors.ped_teacher_generator));
  const auto node = ranks::this_process().node;
  actors.inspected.push_back({{"ped_teacher", 0, 0, node, cfg.tutor.device, "generator"},
                              caf::actor_cast<caf::actor>(actors.ped_teacher_generator)});
  if (!rounds)
    return;
  learner_setup teacher = tutor_learner;
  teacher.weights = teacher_channel;
  if (!run.resume_dir.empty())
    teacher.resume = run.resume_dir / "ped_teacher";
  teacher.options.grpo.beta = 0;
  if (cfg.ped.teacher_learning_rate > 0)
    teacher.options.learning_rate = cfg.ped.teacher_learning_rate;
  actors.ped_teacher = spawn_learner(system, teacher);
  stopper.actors.push_back(caf::actor_cast<caf::actor>(actors.ped_teacher));
  actors.inspected.push_back({{"ped_teacher_learner", 0, 0, node, cfg.tutor.device, "learner"},
                              caf::actor_cast<caf::actor>(actors.ped_teacher)});
}

} // namespace

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
  role_actors found;
  auto& by_role = found.by_role;
  by_role["tutor"][0] =
    caf::actor_cast<caf::actor>(spawn_role_generator(system, tutor_cfg, "tutor", channel));
  if (opts.make_student)
    by_role["student"][0] = caf::actor_cast<caf::actor>(opts.make_student(system));
  else if (!solver)
    by_role["student"][0] =
      caf::actor_cast<caf::actor>(spawn_role_generator(system, cfg.student, "student"));
  if (needs_judge_generator(cfg) && !solver) {
    ensure_model(cfg.judge, "judge", seed + 2);
    by_role["judge"][0] =
      caf::actor_cast<caf::actor>(spawn_role_generator(system, cfg.judge, "judge"));
  }
  auto ls = learner_setup_from(cfg, run.resume_dir, cfg.tutor.device, run.total_steps);
  ls.weights = channel;
  by_role["learner"][0] = caf::actor_cast<caf::actor>(spawn_learner(system, ls));
  for (const auto& [role, handles] : by_role)
    for (const auto& [index, a] : handles)
      stopper.actors.push_back(a);
  // Everything runs here, rank 0 of one.
  job_actors actors = assemble_job(system, cfg, found, {ranks::this_process()}, stopper);
  if (cfg.ped.mode != config::ped_mode::off)
    add_ped_teacher(system, cfg, run, ls, actors, stopper);
  const int code = run_steps(system, cfg, resolved_toml, run, actors);
  if (signals::stop_requested() != 0)
    signals::exit_now(code); // everything is on disk; requests in flight are not waited for
  return code;
}

} // namespace pedagogy::actors
