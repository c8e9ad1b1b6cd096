// The local and MPI weight channels (see weight_channel.hpp).
#include "collectives/weight_channel.hpp"

#include "collectives/mpi_data_parallel.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <stdexcept>

namespace pedagogy {

// Both ends walk the parameters in name order, so the learner's and a generator's own orders
// need not agree.
named_tensors sorted_by_name(const named_tensors& tensors) {
  auto sorted = tensors;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return sorted;
}

// The fingerprint is FNV-1a over the names and element counts.
weight_header describe_weights(const named_tensors& sorted, int64_t version) {
  weight_header h;
  h.version = version;
  h.tensors = static_cast<int64_t>(sorted.size());
  uint64_t hash = 1469598103934665603ull;
  auto mix = [&](const void* data, size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) {
      hash ^= p[i];
      hash *= 1099511628211ull;
    }
  };
  for (const auto& [name, t] : sorted) {
    mix(name.data(), name.size());
    const int64_t n = t.numel();
    mix(&n, sizeof n);
    h.elements += n;
  }
  h.fingerprint = hash;
  return h;
}

void copy_weight_range(const named_tensors& sorted, int64_t begin, const at::Tensor& buffer,
                       bool pack) {
  at::NoGradGuard no_grad;
  const int64_t end = begin + buffer.numel();
  int64_t offset = 0; // of the current tensor in the stream
  for (const auto& [name, t] : sorted) {
    const int64_t n = t.numel();
    const int64_t from = std::max(begin, offset);
    const int64_t to = std::min(end, offset + n);
    if (from < to) {
      auto part = buffer.narrow(0, from - begin, to - from);
      if (pack) {
        part.copy_(t.detach().reshape({-1}).narrow(0, from - offset, to - from));
      } else {
        PEDAGOGY_CHECK(t.is_contiguous(), "weights: '{}' is not contiguous", name);
        t.view({-1}).narrow(0, from - offset, to - from).copy_(part);
      }
    }
    offset += n;
    if (offset >= end)
      break;
  }
}

// ---- snapshot ---------------------------------------------------------------------------------

weight_snapshot::weight_snapshot(int takers, std::chrono::milliseconds timeout)
  : takers_(takers), timeout_(timeout) {}

void weight_snapshot::put(const named_tensors& source, int64_t version) {
  at::NoGradGuard no_grad;
  named_tensors copy;
  for (const auto& [name, t] : source)
    copy.emplace_back(name, t.detach().clone());
  {
    std::lock_guard guard{mutex_};
    copy_ = std::move(copy);
    version_ = version;
    taken_ = 0;
  }
  changed_.notify_all();
}

void weight_snapshot::copy_into(const named_tensors& target, int64_t version) {
  std::unique_lock lock{mutex_};
  // The trainer tells the learner and the generators at once: the generator may be first.
  if (!changed_.wait_for(lock, timeout_, [&] { return version_ >= version; }))
    throw std::runtime_error(fmt::format("weights version {} was not offered within {} s", version,
                                         timeout_.count() / 1000));
  if (version_ != version)
    throw std::runtime_error(
      fmt::format("weights version {} asked for, but {} is offered", version, version_));
  std::map<std::string, const at::Tensor*> source;
  for (const auto& [name, t] : copy_)
    source.emplace(name, &t);
  if (source.size() != target.size())
    throw std::runtime_error(
      fmt::format("weights: {} tensors offered, {} to receive", source.size(), target.size()));
  at::NoGradGuard no_grad;
  for (const auto& [name, t] : target) {
    auto it = source.find(name);
    if (it == source.end() || it->second->sizes() != t.sizes())
      throw std::runtime_error(fmt::format("weights: '{}' is missing or misshapen", name));
    t.copy_(*it->second); // casts dtype and moves between devices
  }
  if (++taken_ >= takers_)
    copy_.clear(); // every taker has it: the memory goes back
}

// ---- local ------------------------------------------------------------------------------------

local_weight_channel::local_weight_channel(int takers, std::chrono::milliseconds timeout)
  : snapshot_(takers, timeout) {}

void local_weight_channel::offer(const named_tensors& source, int64_t version) {
  snapshot_.put(source, version);
}

void local_weight_channel::take(const named_tensors& target, int64_t version) {
  snapshot_.copy_into(target, version);
}

// ---- mpi --------------------------------------------------------------------------------------

mpi_weight_channel::mpi_weight_channel(mpi::service& mpi, mpi::communicator group,
                                       int64_t bucket_bytes, int local_takers,
                                       std::chrono::milliseconds timeout)
  : mpi_(mpi), group_(std::move(group)), bucket_bytes_(std::max<int64_t>(bucket_bytes, 4)) {
  if (group_.rank == 0 && local_takers > 0)
    snapshot_ = std::make_unique<weight_snapshot>(local_takers, timeout);
}

void mpi_weight_channel::offer(const named_tensors& source, int64_t version) {
  PEDAGOGY_CHECK(group_.rank == 0, "only the learner root offers weights");
  if (snapshot_)
    snapshot_->put(source, version);
  if (group_.size <= 1)
    return;
  const auto sorted = sorted_by_name(source);
  weight_header h = describe_weights(sorted, version);
  mpi_.broadcast(group_, &h, sizeof h, 0, fmt::format("weights v{} (header)", version));
  const int64_t per_bucket = bucket_bytes_ / static_cast<int64_t>(sizeof(float));
  auto buffer = at::empty({std::min(per_bucket, std::max<int64_t>(h.elements, 1))},
                          at::TensorOptions().dtype(at::kFloat));
  for (int64_t begin = 0; begin < h.elements; begin += per_bucket) {
    auto bucket = buffer.narrow(0, 0, std::min(per_bucket, h.elements - begin));
    copy_weight_range(sorted, begin, bucket, /*pack=*/true);
    mpi_.broadcast(group_, bucket.data_ptr<float>(),
                   static_cast<size_t>(bucket.numel()) * sizeof(float), 0,
                   fmt::format("weights v{}", version));
  }
}

void mpi_weight_channel::take(const named_tensors& target, int64_t version) {
  if (group_.rank == 0) {
    PEDAGOGY_CHECK(snapshot_ != nullptr, "a tutor on the learner root's rank needs a snapshot");
    snapshot_->copy_into(target, version);
    return;
  }
  const auto sorted = sorted_by_name(target);
  const weight_header mine = describe_weights(sorted, version);
  weight_header h;
  mpi_.broadcast(group_, &h, sizeof h, 0, fmt::format("weights v{} (header)", version));
  // A mismatch breaks the broadcast sequence for good: the job cannot go on.
  if (!(h == mine))
    mpi_.abort(fmt::format("the weight broadcast sent version {} with {} tensors ({} elements), "
                           "the tutor here expected version {} with {} tensors ({} elements)",
                           h.version, h.tensors, h.elements, version, mine.tensors, mine.elements));
  const int64_t per_bucket = bucket_bytes_ / static_cast<int64_t>(sizeof(float));
  auto buffer = at::empty({std::min(per_bucket, std::max<int64_t>(h.elements, 1))},
                          at::TensorOptions().dtype(at::kFloat));
  for (int64_t begin = 0; begin < h.elements; begin += per_bucket) {
    auto bucket = buffer.narrow(0, 0, std::min(per_bucket, h.elements - begin));
    mpi_.broadcast(group_, bucket.data_ptr<float>(),
                   static_cast<size_t>(bucket.numel()) * sizeof(float), 0,
                   fmt::format("weights v{}", version));
    copy_weight_range(sorted, begin, bucket, /*pack=*/false);
  }
}

// ---- data-parallel gradient sums --------------------------------------------------------------

mpi_data_parallel::mpi_data_parallel(mpi::service& mpi, mpi::communicator learners,
                                     int64_t bucket_bytes)
  : mpi_(mpi), learners_(std::move(learners)), bucket_bytes_(std::max<int64_t>(bucket_bytes, 4)) {}

void mpi_data_parallel::sum(std::vector<double>& values) {
  mpi_.sum(learners_, values.data(), values.size(), "learner statistics");
}

namespace {

// `tensors` as one stream of float32 elements in buckets of `bucket_bytes`: move(stream, begin,
// bucket) for each bucket, in order (the same on every rank, as collectives need).
template <class Move>
void in_float_buckets(const std::vector<at::Tensor>& tensors, int64_t bucket_bytes, Move&& move) {
  named_tensors stream;
  int64_t elements = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    PEDAGOGY_CHECK(at::isFloatingType(tensors[i].scalar_type()),
                   "learner collectives move floating-point tensors");
    stream.emplace_back(std::to_string(i), tensors[i]);
    elements += tensors[i].numel();
  }
  const int64_t per_bucket = bucket_bytes / static_cast<int64_t>(sizeof(float));
  auto buffer = at::empty({std::min(per_bucket, std::max<int64_t>(elements, 1))},
                          at::TensorOptions().dtype(at::kFloat));
  for (int64_t begin = 0; begin < elements; begin += per_bucket)
    move(stream, begin, buffer.narrow(0, 0, std::min(per_bucket, elements - begin)));
}

} // namespace

void mpi_data_parallel::sum(const std::vector<at::Tensor>& tensors) {
  in_float_buckets(tensors, bucket_bytes_,
                   [&](const named_tensors& stream, int64_t begin, const at::Tensor& bucket) {
                     copy_weight_range(stream, begin, bucket, /*pack=*/true);
                     mpi_.sum(learners_, bucket.data_ptr<float>(),
                              static_cast<size_t>(bucket.numel()), "gradient sum");
                     copy_weight_range(stream, begin, bucket, /*pack=*/false);
                   });
}

void mpi_data_parallel::broadcast(const std::vector<at::Tensor>& tensors, int64_t root) {
  // Float32 buckets: a bf16 weight travels exactly and is rounded back to itself.
  in_float_buckets(tensors, bucket_bytes_,
                   [&](const named_tensors& stream, int64_t begin, const at::Tensor& bucket) {
                     if (learners_.rank == root)
                       copy_weight_range(stream, begin, bucket, /*pack=*/true);
                     mpi_.broadcast(learners_, bucket.data_ptr<float>(),
                                    static_cast<size_t>(bucket.numel()) * sizeof(float),
                                    static_cast<int>(root), "optimizer shard weights");
                     if (learners_.rank != root)
                       copy_weight_range(stream, begin, bucket, /*pack=*/false);
                   });
}

} // namespace pedagogy
