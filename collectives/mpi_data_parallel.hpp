// Data-parallel learners over MPI: the learner's sums (data_parallel) as all-reduces
// over the learner ranks' communicator, gradients in float32 buckets of
// cluster.weight_bucket_mb. Every rank gets the same sum, so the learners stay identical; with
// ZeRO-1 each learner then broadcasts the parameters it updated.
#pragma once

#include "collectives/data_parallel.hpp"
#include "runtime/mpi_service.hpp"

namespace pedagogy {

class mpi_data_parallel : public data_parallel {
public:
  mpi_data_parallel(mpi::service& mpi, mpi::communicator learners, int64_t bucket_bytes);
  int64_t size() const override {
    return learners_.size;
  }
  void sum(std::vector<double>& values) override;
  void sum(const std::vector<at::Tensor>& tensors) override;
  void broadcast(const std::vector<at::Tensor>& tensors, int64_t root) override;
  [[noreturn]] void abort(const std::string& why) override {
    mpi_.abort(why);
  }

private:
  mpi::service& mpi_;
  mpi::communicator learners_;
  int64_t bucket_bytes_;
};

} // namespace pedagogy
