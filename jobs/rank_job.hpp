// What the stages of a multi-rank training job share (train_ranks.cpp runs stages 1-3,
// rank_actors.cpp stages 4-7): this rank, the MPI service, and where the run starts.
#pragma once

#include "config/schema.hpp"
#include "jobs/placement.hpp"
#include "jobs/training_run.hpp"
#include "runtime/logging.hpp"
#include "runtime/mpi_service.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace pedagogy::actors {

struct rank_job {
  const config::config& cfg;
  mpi::service& mpi;
  const ranks::rank_info& me;
  const mpi::communicator& world;
  bool root = false; // rank 0: prepares the run, runs the trainer, speaks for every rank
  std::shared_ptr<spdlog::logger> logger;
  // The start of a job waits on ranks loading models and connecting: longer than a collective.
  double startup_limit_s = 0;

  rank_job(const config::config& c, mpi::service& service)
    : cfg(c), mpi(service), me(service.self()), world(service.world_comm()), root(me.rank == 0),
      logger(log::get("cluster")), startup_limit_s(4 * service.collective_timeout_s()) {}
};

// Where rank 0 starts the run, as every rank learns it.
struct run_start {
  std::filesystem::path resume_dir; // "" = a fresh start
  int64_t total_steps = 0;
};

// Stages 4-7: communicators, this rank's actors, the other ranks' keepers, and on rank 0 the job
// assembled and the step loop. Never returns: every rank leaves the process from here, with the
// step loop's exit code.
[[noreturn]] void run_on_ranks(const rank_job& job, const std::string& resolved_toml,
                               const placement& plan, prepared_run& run, const run_start& start);

} // namespace pedagogy::actors
