// A training job over MPI ranks (DESIGN §7): every rank runs train_multi_rank, from the same
// config, as named stages:
//
//   1. the MPI thread starts; every rank knows every rank's node and device
//   1b. every rank compares its resolved config with rank 0's; a difference stops the job
//   2. the placement is planned from the config on every rank (the same answer everywhere);
//      rank 0 prints it as a table, or the error naming the knob, before anything loads
//   3. rank 0 prepares the run (run folder, lock, resume, random-init models) and broadcasts
//      where the run starts; every rank checks that it sees the run folder rank 0 wrote into
//   4-7. communicators, every rank's actors, rank 0 reaching them and the step loop
//      (rank_actors.cpp)
#include "jobs/train_ranks.hpp"

#include "actors/inspector_actor.hpp"
#include "config/config.hpp"
#include "jobs/memory_plan.hpp"
#include "jobs/placement.hpp"
#include "jobs/preflight.hpp"
#include "jobs/rank_job.hpp"
#include "jobs/setup.hpp"
#include "jobs/training_run.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/mpi_service.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace pedagogy::actors {

namespace {

namespace fs = std::filesystem;

constexpr int bad_input = static_cast<int>(exit_code::bad_input);

std::string random_token() {
  std::random_device device;
  return fmt::format("{:016x}{:08x}", (static_cast<uint64_t>(device()) << 32) | device(),
                     static_cast<unsigned>(::getpid()));
}

// 1b. Every rank runs rank 0's config: a rank started with another one (a wrapper script, an
// edited file on one node) would train, place or sync by other rules, silently.
std::optional<int> check_same_config(const rank_job& job, const std::string& resolved_toml) {
  auto& mpi = job.mpi;
  const auto reference = mpi.broadcast(job.world, job.root ? resolved_toml : std::string(), 0,
                                       "rank 0's config, for the config check");
  const auto mine = config::differences(resolved_toml, reference);
  const auto all =
    mpi.all_gather(job.world, fmt::format("{}", fmt::join(mine, "; ")), "the config check");
  std::map<std::string, std::vector<int>> ranks_with; // the same difference once, with its ranks
  for (int r = 1; r < job.me.world_size; ++r)
    if (!all[static_cast<size_t>(r)].empty())
      ranks_with[all[static_cast<size_t>(r)]].push_back(r);
  std::vector<std::string> mismatched;
  for (const auto& [difference, ranks] : ranks_with)
    mismatched.push_back(fmt::format("rank(s) {} have {} (their value vs rank 0's)",
                                     fmt::join(ranks, ", "), difference));
  if (mismatched.empty())
    return std::nullopt;
  if (!job.root)
    return bad_input;
  throw input_error(
    "--config",
    fmt::format("the ranks were started with different configs: {}", fmt::join(mismatched, "; ")),
    "start every rank with the same --config file and overrides");
}

// 2. Placement: every rank computes the same answer; rank 0 speaks for all of them.
std::optional<int> plan_ranks(const rank_job& job, const train_options& opts, placement& plan) {
  const auto& cfg = job.cfg;
  auto& mpi = job.mpi;
  // NCCL needs a GPU on every rank of the weight group; asking for it needs one on every rank.
  bool has_cuda = true;
  for (const auto& r : mpi.world())
    has_cuda = has_cuda && r.device.rfind("cuda", 0) == 0;
  try {
    plan = plan_placement(cfg, job.me.world_size, has_cuda);
    check_inspect_config(cfg.inspect);
    // Every rank computes the same plan; a rank on a GPU whose size is not configured assumes
    // its own device's for every GPU rank (one kind of node per job).
    const double own = device_capacity_bytes(cfg, job.me.device);
    const memory_plan memory = plan_memory(
      cfg, plan, shapes_from_config(cfg),
      [&](int r) {
        return cfg.cluster.device_memory_gib > 0 ||
                   mpi.world()[static_cast<size_t>(r)].device.rfind("cuda", 0) == 0
                 ? own
                 : 0.0;
      },
      has_cuda);
    if (job.root)
      job.logger->info("memory plan per device:\n{}", memory.table());
    check_memory_plan(memory);
  } catch (const input_error&) {
    if (job.root)
      throw;
    return bad_input;
  }
  if (opts.make_student) {
    if (!job.root)
      return bad_input;
    throw input_error("cluster.mode", "a scripted student is a local-mode test helper",
                      "run it with cluster.mode = \"local\"");
  }
  if (job.root) {
    std::set<std::string> nodes;
    for (const auto& r : mpi.world())
      nodes.insert(r.node);
    job.logger->info("{} ranks on {} node(s):\n{}", job.me.world_size, nodes.size(),
                     placement_table(plan, mpi.world()));
  }
  return std::nullopt;
}

// 3. Rank 0 prepares the run (run folder, lock, resume, random-init models) and tells every rank
// where it starts, or why it does not.
std::optional<int> start_run(const rank_job& job, const std::string& resolved_toml,
                             const train_options& opts, prepared_run& run, run_start& start,
                             std::string& token) {
  const auto& cfg = job.cfg;
  nlohmann::json told;
  const auto seed = static_cast<uint64_t>(cfg.train.seed);
  auto tell = [&] {
    return nlohmann::json::parse(
      job.mpi.broadcast(job.world, told.dump(), 0, "the start of the run", job.startup_limit_s));
  };
  if (job.root) {
    try {
      check_before_loading(cfg);
      run = prepare_run(cfg, resolved_toml, opts);
      ensure_model(cfg.tutor, "tutor", seed);
      ensure_model(cfg.student, "student", seed + 1);
      if (needs_judge_generator(cfg))
        ensure_model(cfg.judge, "judge", seed + 2);
      const auto written = random_token();
      files::write_atomically(run.run_dir / ".pedagogy-shared-check", written);
      told = {{"token", written},
              {"resume_dir", run.resume_dir.string()},
              {"start_step", run.start_step},
              {"total_steps", run.total_steps}};
    } catch (const input_error& e) {
      told = {{"error", describe(e)}, {"code", bad_input}};
      tell();
      throw;
    } catch (const std::exception& e) {
      told = {{"error", e.what()}, {"code", static_cast<int>(exit_code::failure)}};
      tell();
      throw;
    }
  }
  told = tell();
  if (told.contains("error"))
    return told["code"].get<int>();
  start.resume_dir = told["resume_dir"].get<std::string>();
  start.total_steps = told["total_steps"].get<int64_t>();
  token = told["token"].get<std::string>();
  return std::nullopt;
}

// Every rank must read and write the run's files: rank 0 wrote a token there, each rank reads it.
std::optional<int> check_shared_folder(const rank_job& job, const std::string& token) {
  auto& mpi = job.mpi;
  const fs::path run_dir = job.cfg.logging.run_dir;
  std::string seen;
  {
    std::ifstream in(run_dir / ".pedagogy-shared-check");
    std::getline(in, seen);
  }
  const auto sightings =
    mpi.all_gather(job.world, seen == token ? "yes" : "no", "the shared run folder check");
  std::vector<std::string> blind;
  for (int r = 0; r < job.me.world_size; ++r)
    if (sightings[static_cast<size_t>(r)] != "yes")
      blind.push_back(fmt::format("rank {} on {}", r, mpi.world()[static_cast<size_t>(r)].node));
  if (!blind.empty()) {
    if (!job.root)
      return bad_input;
    fs::remove(run_dir / ".pedagogy-shared-check");
    throw input_error("logging.run_dir",
                      fmt::format("'{}' is not shared by every rank: {} cannot see what rank 0 "
                                  "wrote there",
                                  run_dir.string(), fmt::join(blind, ", ")),
                      "put logging.run_dir (and the model folders) on a file system every node "
                      "mounts, e.g. a cluster's /scratch or home");
  }
  if (job.root) {
    fs::remove(run_dir / ".pedagogy-shared-check");
    job.logger->info("run folder {} is shared by all {} ranks (checked)", run_dir.string(),
                     job.me.world_size);
  }
  return std::nullopt;
}

} // namespace

int train_multi_rank(const config::config& cfg, const std::string& resolved_toml,
                     const train_options& opts) {
  // 1. The MPI thread starts; every rank knows every rank's node and device.
  auto mpi = std::make_unique<mpi::service>(cfg.cluster.collective_timeout_s);
  const rank_job job(cfg, *mpi);
  if (const auto code = check_same_config(job, resolved_toml))
    return *code;
  placement plan;
  if (const auto code = plan_ranks(job, opts, plan))
    return *code;
  prepared_run run;
  run_start start;
  std::string token;
  if (const auto code = start_run(job, resolved_toml, opts, run, start, token))
    return *code;
  if (const auto code = check_shared_folder(job, token))
    return *code;
  run_on_ranks(job, resolved_toml, plan, run, start);
}

} // namespace pedagogy::actors
