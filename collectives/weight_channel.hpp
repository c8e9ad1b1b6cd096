// The weight channel (DESIGN §6): how the learner's new tutor weights reach every tutor
// generator after a GRPO step, as a protocol rather than files.
//
// One channel object per rank, owned by that rank; nothing is shared between the learner and
// the generators. A sync of version v: the trainer announces v to the learner root and to every
// tutor generator at once; the learner root calls offer(), each generator calls take() at an
// engine step boundary; both return once v has moved, and each reports v to the trainer. Because
// every party is told at once and each side's calls come in version order, the broadcast cannot
// deadlock with itself or with the learners' gradient sums (which finish before the trainer
// announces v).
//
//   local  one process: offer() snapshots the parameters (a copy, never a handle to the
//          learner's live tensors), take() copies them in, casting to the generator's dtype.
//   mpi    bucketed MPI_Bcast of float32 buffers from the learner root to the tutor ranks over
//          their own communicator; a tutor on the root's own rank takes a local snapshot.
#pragma once

#include "runtime/mpi_service.hpp"

#include <ATen/Tensor.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pedagogy {

using named_tensors = std::vector<std::pair<std::string, at::Tensor>>;

class weight_channel {
public:
  virtual ~weight_channel() = default;
  // Learner root: sends version `version` of `source` (blocks until it has gone out).
  virtual void offer(const named_tensors& source, int64_t version) = 0;
  // A tutor generator: copies version `version` into its own tensors (same names and shapes, any
  // dtype or device); blocks until that version arrives. Throws when it does not match.
  virtual void take(const named_tensors& target, int64_t version) = 0;
  virtual std::string kind() const = 0;
};

// ---- shared by the channels -------------------------------------------------------------------

// What both ends must agree on before any bucket moves: the version, and a fingerprint of the
// names and sizes, so a tutor of another shape fails loudly instead of mixing weights.
struct weight_header {
  int64_t version = -1;
  int64_t tensors = 0;
  int64_t elements = 0;
  uint64_t fingerprint = 0;
  bool operator==(const weight_header&) const = default;
};

// Both ends walk the parameters in name order.
named_tensors sorted_by_name(const named_tensors& tensors);
weight_header describe_weights(const named_tensors& sorted, int64_t version);

// The parameters as one stream of float32 elements cut into buckets: copies elements
// [begin, begin + buffer.numel()) of the stream into `buffer` (pack) or out of it into the
// tensors (unpack, casting to their dtype and device).
void copy_weight_range(const named_tensors& sorted, int64_t begin, const at::Tensor& buffer,
                       bool pack);

// What offer() keeps for takers in the same process: a copy of one version, released once
// every local taker has it. take() waits (up to `timeout`) for the version it is told.
class weight_snapshot {
public:
  weight_snapshot(int takers, std::chrono::milliseconds timeout);
  void put(const named_tensors& source, int64_t version);
  void copy_into(const named_tensors& target, int64_t version);

private:
  int takers_;
  std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable changed_;
  named_tensors copy_;
  int64_t version_ = -1;
  int taken_ = 0;
};

// Same process: the generators copy from a snapshot of the learner's parameters.
class local_weight_channel : public weight_channel {
public:
  explicit local_weight_channel(int takers = 1,
                                std::chrono::milliseconds timeout = std::chrono::minutes(30));
  void offer(const named_tensors& source, int64_t version) override;
  void take(const named_tensors& target, int64_t version) override;
  std::string kind() const override {
    return "local";
  }

private:
  weight_snapshot snapshot_;
};

// Across ranks: bucketed broadcasts over `group`, whose rank 0 is the learner root.
class mpi_weight_channel : public weight_channel {
public:
  // `local_takers`: tutor generators on the root's own rank (they take a snapshot).
  mpi_weight_channel(mpi::service& mpi, mpi::communicator group, int64_t bucket_bytes,
                     int local_takers, std::chrono::milliseconds timeout);
  void offer(const named_tensors& source, int64_t version) override;
  void take(const named_tensors& target, int64_t version) override;
  std::string kind() const override {
    return "mpi";
  }

private:
  mpi::service& mpi_;
  mpi::communicator group_;
  int64_t bucket_bytes_;
  std::unique_ptr<weight_snapshot> snapshot_; // root with local takers only
};

} // namespace pedagogy
