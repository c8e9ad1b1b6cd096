// What data-parallel learners need of each other: sums of statistics and gradients, and the
// broadcast of the parameters one rank updated (ZeRO-1). The learner (models/learner/learner.hpp)
// calls it; collectives/mpi_data_parallel.hpp implements it over MPI.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace pedagogy {

// The other data-parallel learner ranks, as the learner sees them: sums across all of them
// (every rank calls each sum in the same order, as with any collective).
class data_parallel {
public:
  virtual ~data_parallel() = default;
  virtual int64_t size() const = 0;
  // In-place sum of a few statistics.
  virtual void sum(std::vector<double>& values) = 0;
  // In-place sum of floating-point tensors (the gradients), in float32 buckets.
  virtual void sum(const std::vector<at::Tensor>& tensors) = 0;
  // Every rank's `tensors` become rank `root`'s (ZeRO-1: the parameters `root` updated).
  virtual void broadcast(const std::vector<at::Tensor>& tensors, int64_t root) = 0;
  // One rank failed where the others go on into the next sum: end the whole job, saying why.
  [[noreturn]] virtual void abort(const std::string& why) = 0;
};

} // namespace pedagogy
