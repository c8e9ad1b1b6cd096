// The nccl weight channel (DESIGN §6): the mpi channel's protocol with the buckets moved by
// ncclBroadcast between GPUs, on a CUDA stream of the channel's own. Compiled when the build
// found CUDA and NCCL (PEDAGOGY_HAVE_CUDA); needs a GPU on every member at run time.
//
// The communicator is bootstrapped over MPI: the learner root makes the NCCL unique id and
// broadcasts it to the group, then every member calls ncclCommInitRank on its own device. The
// version and the fingerprint of names and sizes still go over MPI first (a few bytes), so a
// mismatched tutor ends the job before a bucket moves. Buckets are float32 buffers on the
// device; packing and unpacking run on the legacy default stream, which a blocking stream such
// as the channel's is ordered with, so a sync waits on the device once, at its end.
#pragma once

#include "collectives/weight_channel.hpp"

#include <memory>

namespace pedagogy {

// `device` is this rank's CUDA device index. Throws std::runtime_error naming the CUDA or NCCL
// call that failed.
std::unique_ptr<weight_channel> make_nccl_weight_channel(mpi::service& mpi, mpi::communicator group,
                                                         int device, int64_t bucket_bytes,
                                                         int local_takers,
                                                         std::chrono::milliseconds timeout);

// True when the process sees a GPU.
bool nccl_usable();

// One GPU's check of the whole path (for the gpu tests): a single-rank NCCL communicator on
// `device` broadcasts `source` bucket by bucket, each bucket unpacked into `target` as a tutor
// would. Returns the buckets moved.
int64_t nccl_loopback(const named_tensors& source, const named_tensors& target, int device,
                      int64_t bucket_bytes);

} // namespace pedagogy
