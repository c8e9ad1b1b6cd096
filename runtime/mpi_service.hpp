// The one thread that owns MPI in a multi-rank job (DESIGN §7).
//
// MPI is initialised, used and finalised by a thread of its own; actors, the learner and the
// weight channel hand it work and wait for the result. Every wait on a peer has a deadline: the
// collectives are blocking calls on that thread (full speed, and Open MPI yields the core while
// it waits on an oversubscribed node) watched by a watchdog thread, and one that has not finished
// after `collective_timeout_s` (or the call's own limit) ends this process with a message naming
// the collective, its communicator and the ranks in it; the launcher (mpirun, srun) then ends
// the others, instead of the job hanging on a dead rank. MPI_Finalize is watched too.
//
// The end of a job is a collective too: rank 0 calls end(code) and every other rank, waiting in
// wait_for_end(), returns that code, so all ranks leave together and with the same exit status.
//
// No <mpi.h> here: communicators are small handles the service resolves.
#pragma once

#include "runtime/ranks.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pedagogy::mpi {

// A communicator: a group of world ranks. `rank` is this process's rank in it, -1 when this
// process is not a member.
struct communicator {
  int id = -1;
  int rank = -1;
  int size = 0;
  std::vector<int> members; // world ranks, in communicator rank order
  std::string name;         // for messages: "weights", "learners", ...

  bool member() const {
    return rank >= 0;
  }
};

class service {
public:
  // Starts the MPI thread, initialises MPI on it and learns who this process is. A process not
  // started by a launcher is rank 0 of a world of one. 0 = collectives never time out.
  explicit service(double collective_timeout_s);
  // Finalises MPI on its thread (every rank must get here, normally after end()/wait_for_end()).
  ~service();
  // The same, earlier: later calls throw, so an actor still holding the service gets an error
  // instead of a collective nobody joins. Idempotent.
  void finalize();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  const ranks::rank_info& self() const;
  // Every rank's description, in rank order (the same on every rank).
  const std::vector<ranks::rank_info>& world() const;
  const communicator& world_comm() const;

  // Collective over the world: every rank calls it with the same `members`; returns the
  // communicator of those world ranks (in that order), or a non-member handle.
  communicator split(const std::vector<int>& members, const std::string& name);

  // Broadcast `bytes` bytes from `root` (a rank of `comm`); members only. `limit_s` < 0 means
  // the collective timeout; the start of a job passes longer limits (ranks loading models).
  void broadcast(const communicator& comm, void* data, size_t bytes, int root,
                 const std::string& what, double limit_s = -1);
  std::string broadcast(const communicator& comm, std::string text, int root,
                        const std::string& what, double limit_s = -1);
  // In-place sum over the members.
  void sum(const communicator& comm, float* data, size_t count, const std::string& what);
  void sum(const communicator& comm, double* data, size_t count, const std::string& what);
  // Every member's text, in communicator rank order, on every member.
  std::vector<std::string> all_gather(const communicator& comm, const std::string& text,
                                      const std::string& what, double limit_s = -1);
  void barrier(const communicator& comm, const std::string& what);

  // Rank 0: tells every rank the job is over with exit code `code`.
  void end(int code);
  // Other ranks: blocks until rank 0 calls end() and returns its code. A first signal does not
  // end the wait (rank 0 finishes its step and checkpoints first); a second exits at once.
  int wait_for_end();
  double collective_timeout_s() const;

  // Ends every rank of the job now: prints `message` and calls MPI_Abort.
  [[noreturn]] void abort(const std::string& message, int code = 1);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace pedagogy::mpi
