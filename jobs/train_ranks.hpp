// Training over MPI ranks (DESIGN §7): every rank of the job runs train_multi_rank from the same
// config; rank 0 prepares the run and runs the trainer, the others host the actors the placement
// gives them.
#pragma once

#include "config/schema.hpp"
#include "jobs/training_run.hpp"

#include <string>

namespace pedagogy::actors {

// Multi-rank mode (cluster.mode = "mpi", or "auto" under mpirun): every rank calls it.
int train_multi_rank(const config::config& cfg, const std::string& resolved_toml,
                     const train_options& options);

} // namespace pedagogy::actors
