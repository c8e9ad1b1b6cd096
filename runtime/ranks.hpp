// Who this process is in a multi-process job: its rank, the world size, its node and its rank
// among the processes on that node (which picks its GPU), from MPI.
//
// A process started by mpirun or srun initialises MPI here (MPI_THREAD_FUNNELED: the thread that
// calls this is the one that owns MPI); a process started by hand is rank 0 of 1 and never
// initialises MPI, so local mode does not depend on a working MPI installation.
#pragma once

#include <string>
#include <vector>

namespace pedagogy::ranks {

struct rank_info {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0; // among the ranks on this node
  int local_size = 1;
  std::string node;   // host name as MPI reports it
  std::string device; // "cuda:<local_rank>" when this build has CUDA and the node has a GPU, else
                      // "cpu"
};

// True when a launcher (mpirun, srun) started this process as one of several.
bool launched_by_mpi();

// Initialises MPI when needed (once) and describes this process. `force_mpi` initialises MPI
// even when started by hand (a singleton world of one).
rank_info this_process(bool force_mpi = false);

// Every rank's rank_info, in rank order, on rank 0 (empty elsewhere). Collective: every rank
// must call it.
std::vector<rank_info> gather_on_root(const rank_info& mine);
// The same on every rank.
std::vector<rank_info> gather_everywhere(const rank_info& mine);

// A failed MPI call is fatal (STYLE §8): names the call and MPI's reason, then ends the process.
void check_mpi(int rc, const std::string& call);

// Finalises MPI if this process initialised it (idempotent; registered with atexit too).
void finalize();

} // namespace pedagogy::ranks
