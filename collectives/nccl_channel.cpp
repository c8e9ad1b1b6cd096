// The nccl weight channel (see nccl_channel.hpp).
#include "collectives/nccl_channel.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <nccl.h>

#include <algorithm>
#include <stdexcept>

namespace pedagogy {

namespace {

void check_cuda(cudaError_t status, const char* call) {
  if (status != cudaSuccess)
    throw std::runtime_error(fmt::format("{} failed: {}", call, cudaGetErrorString(status)));
}

void check_nccl(ncclResult_t status, const char* call) {
  if (status != ncclSuccess)
    throw std::runtime_error(fmt::format("{} failed: {}", call, ncclGetErrorString(status)));
}

class nccl_weight_channel : public weight_channel {
public:
  nccl_weight_channel(mpi::service& mpi, mpi::communicator group, int device, int64_t bucket_bytes,
                      int local_takers, std::chrono::milliseconds timeout)
    : mpi_(mpi), group_(std::move(group)), device_(device),
      bucket_bytes_(std::max<int64_t>(bucket_bytes, 4)) {
    if (group_.rank == 0 && local_takers > 0)
      snapshot_ = std::make_unique<weight_snapshot>(local_takers, timeout);
    if (group_.size <= 1)
      return;
    ncclUniqueId id{};
    if (group_.rank == 0)
      check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    mpi_.broadcast(group_, &id, sizeof id, 0, "the NCCL unique id");
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    check_cuda(cudaStreamCreate(&stream_), "cudaStreamCreate"); // blocking: ordered with stream 0
    check_nccl(ncclCommInitRank(&comm_, group_.size, id, group_.rank), "ncclCommInitRank");
  }

  ~nccl_weight_channel() override {
    if (comm_ != nullptr)
      ncclCommDestroy(comm_);
    if (stream_ != nullptr)
      cudaStreamDestroy(stream_);
  }

  void offer(const named_tensors& source, int64_t version) override {
    PEDAGOGY_CHECK(group_.rank == 0, "only the learner root offers weights");
    if (snapshot_)
      snapshot_->put(source, version);
    if (group_.size > 1)
      move(source, version, /*send=*/true);
  }

  void take(const named_tensors& target, int64_t version) override {
    if (group_.rank == 0) {
      PEDAGOGY_CHECK(snapshot_ != nullptr, "a tutor on the learner root's rank needs a snapshot");
      snapshot_->copy_into(target, version);
      return;
    }
    move(target, version, /*send=*/false);
  }

  std::string kind() const override {
    return "nccl";
  }

private:
  void move(const named_tensors& tensors, int64_t version, bool send) {
    const auto sorted = sorted_by_name(tensors);
    const auto mine = describe_weights(sorted, version);
    auto theirs = mine;
    mpi_.broadcast(group_, &theirs, sizeof theirs, 0, fmt::format("weights v{} (header)", version));
    if (!send && !(theirs == mine))
      mpi_.abort(fmt::format("the weight broadcast sent version {} with {} tensors ({} elements), "
                             "the tutor here expected version {} with {} tensors ({} elements)",
                             theirs.version, theirs.tensors, theirs.elements, version, mine.tensors,
                             mine.elements));
    check_cuda(cudaSetDevice(device_), "cudaSetDevice");
    const int64_t per_bucket = bucket_bytes_ / static_cast<int64_t>(sizeof(float));
    auto buffer =
      at::empty({std::min(per_bucket, std::max<int64_t>(mine.elements, 1))},
                at::TensorOptions().dtype(at::kFloat).device(at::Device(at::kCUDA, device_)));
    for (int64_t begin = 0; begin < mine.elements; begin += per_bucket) {
      auto bucket = buffer.narrow(0, 0, std::min(per_bucket, mine.elements - begin));
      if (send)
        copy_weight_range(sorted, begin, bucket, /*pack=*/true);
      check_nccl(ncclBroadcast(bucket.data_ptr(), bucket.data_ptr(),
                               static_cast<size_t>(bucket.numel()), ncclFloat, 0, comm_, stream_),
                 "ncclBroadcast");
      if (!send)
        copy_weight_range(sorted, begin, bucket, /*pack=*/false);
    }
    // The one wait of a sync: the last bucket is unpacked (stream 0 waits for the channel's
    // stream), and the buffer may go.
    check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }

  mpi::service& mpi_;
  mpi::communicator group_;
  int device_ = 0;
  int64_t bucket_bytes_;
  std::unique_ptr<weight_snapshot> snapshot_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

} // namespace

std::unique_ptr<weight_channel> make_nccl_weight_channel(mpi::service& mpi, mpi::communicator group,
                                                         int device, int64_t bucket_bytes,
                                                         int local_takers,
                                                         std::chrono::milliseconds timeout) {
  return std::make_unique<nccl_weight_channel>(mpi, std::move(group), device, bucket_bytes,
                                               local_takers, timeout);
}

int64_t nccl_loopback(const named_tensors& source, const named_tensors& target, int device,
                      int64_t bucket_bytes) {
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  ncclUniqueId id{};
  check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  ncclComm_t comm = nullptr;
  check_nccl(ncclCommInitRank(&comm, 1, id, 0), "ncclCommInitRank");
  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreate(&stream), "cudaStreamCreate");
  const auto from = sorted_by_name(source);
  const auto to = sorted_by_name(target);
  const auto header = describe_weights(from, 0);
  PEDAGOGY_CHECK(header == describe_weights(to, 0), "loopback: source and target differ in shape");
  const int64_t per_bucket = std::max<int64_t>(bucket_bytes / 4, 1);
  auto buffer =
    at::empty({std::min(per_bucket, std::max<int64_t>(header.elements, 1))},
              at::TensorOptions().dtype(at::kFloat).device(at::Device(at::kCUDA, device)));
  int64_t buckets = 0;
  for (int64_t begin = 0; begin < header.elements; begin += per_bucket, ++buckets) {
    auto bucket = buffer.narrow(0, 0, std::min(per_bucket, header.elements - begin));
    copy_weight_range(from, begin, bucket, /*pack=*/true);
    check_nccl(ncclBroadcast(bucket.data_ptr(), bucket.data_ptr(),
                             static_cast<size_t>(bucket.numel()), ncclFloat, 0, comm, stream),
               "ncclBroadcast");
    copy_weight_range(to, begin, bucket, /*pack=*/false);
  }
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  ncclCommDestroy(comm);
  cudaStreamDestroy(stream);
  return buckets;
}

bool nccl_usable() {
  int devices = 0;
  return cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
}

} // namespace pedagogy
