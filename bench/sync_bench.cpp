// `pedagogy bench sync`: what a weight sync and an actor request cost (see bench.hpp).
//
// The weights are float32 tensors of 4 M elements each (a 7B model's largest are 0.5-0.8 G
// elements; bucketing makes the size of one tensor matter little). Throughput counts the bytes of
// the weights once per sync: a broadcast to more tutors moves them more often.
//
// With --local-only the bench stays in one process and never starts MPI: the local channel
// between a learner's float32 weights and a generator's (float32 or bfloat16) on one device, as
// a single-GPU run syncs, against a plain copy of the same bytes on that device; on a CUDA device
// also the nccl channel's path through a single-rank communicator (pack, broadcast, unpack).
#include "bench/bench.hpp"
#include "bench/device.hpp"
#include "collectives/weight_channel.hpp"
#include "runtime/errors.hpp"
#include "runtime/job_tls.hpp"
#include "runtime/mpi_service.hpp"
#ifdef PEDAGOGY_HAVE_CUDA
#include "collectives/nccl_channel.hpp"
#endif

#include <ATen/ATen.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>

namespace pedagogy::bench {

namespace {

using clock_type = std::chrono::steady_clock;

double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

named_tensors weights(double millions, float value,
                      at::TensorOptions options = at::TensorOptions(at::kFloat)) {
  named_tensors out;
  auto left = static_cast<int64_t>(millions * 1e6);
  for (int i = 0; left > 0; ++i) {
    const int64_t n = std::min<int64_t>(left, 4 << 20);
    out.emplace_back(fmt::format("layer.{:04d}.weight", i), at::full({n}, value, options));
    left -= n;
  }
  return out;
}

// The last element of a generator's weights, back on the host as float32.
float last_value(const named_tensors& target) {
  return target.back().second[-1].to(at::kCPU, at::kFloat).item<float>();
}

// One process on one device: the weight syncs a single-GPU run makes (see the file comment).
figures sync_local(const sync_options& options) {
  const auto device = parse_device(options.device, "flag --device");
  const auto dtype = options.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  figures f;
  f.title = fmt::format("weight sync in one process on {} (learner float32, generator {})",
                        device.is_cpu() ? std::string("CPU") : device.str(), options.dtype);
  const auto on_device = at::TensorOptions(at::kFloat).device(device);
  const auto source = weights(options.millions, 1.5f, on_device);
  auto target = weights(options.millions, 0.0f, on_device.dtype(dtype));
  const double bytes = options.millions * 1e6 * 4;
  f.add("parameters_millions", options.millions);
  f.add("bytes_gb", bytes / 1e9);
  auto best_of = [&](const std::function<void(int)>& sync) {
    double best = 1e30;
    for (int r = 0; r < options.repeats; ++r) {
      synchronize(device);
      const auto start = clock_type::now();
      sync(r);
      synchronize(device);
      best = std::min(best, since(start));
    }
    return best;
  };

  // The ceiling: one copy of a float32 tensor of the same bytes (at most 1 GB) on the device.
  {
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(options.millions * 1e6), 256 << 20);
    auto from = at::ones({n}, on_device), to = at::empty({n}, on_device);
    const double seconds = best_of([&](int) { to.copy_(from); });
    f.add("device_copy_gb_per_s", static_cast<double>(n) * 4 / seconds / 1e9);
  }

  // local: the learner's snapshot, then the copy into the generator's weights (with the cast).
  {
    local_weight_channel channel(1, std::chrono::minutes(5));
    const double seconds = best_of([&](int r) {
      channel.offer(source, r);
      channel.take(target, r);
    });
    if (last_value(target) != 1.5f)
      throw std::runtime_error("the local channel delivered wrong weights");
    f.add("local_sync_s", seconds);
    f.add("local_gb_per_s", bytes / seconds / 1e9);
  }

  // nccl: the same buckets the mpi and nccl channels cut, through a one-rank NCCL broadcast.
  // Each call sets up its communicator, so this is an upper bound of a sync's cost.
#ifdef PEDAGOGY_HAVE_CUDA
  if (device.is_cuda() && nccl_usable()) {
    const double seconds =
      best_of([&](int) { nccl_loopback(source, target, device.index(), options.bucket_mb << 20); });
    f.add("nccl_loopback_sync_s", seconds);
    f.add("nccl_loopback_gb_per_s", bytes / seconds / 1e9);
  } else {
    f.notes.push_back("nccl loopback: needs a CUDA device");
  }
#else
  f.notes.push_back("nccl loopback: this build has no CUDA/NCCL");
#endif
  if (device.is_cuda())
    f.add("device_memory_mb", device_memory_mb(device));
  return f;
}

// Mean microseconds of `n` request/reply round trips to `echo`, between two actors (a pinger
// sends the next request when the previous reply arrives), as conversations talk to generators.
double round_trip_us(caf::actor_system& system, const caf::actor& echo, int n) {
  auto pinger = system.spawn([echo](caf::event_based_actor* self) -> caf::behavior {
    return {[=](int count) -> caf::result<double> {
      auto promise = self->make_response_promise<double>();
      auto start = std::make_shared<clock_type::time_point>(clock_type::now());
      auto left = std::make_shared<int>(count + 50); // the first 50 warm up
      auto next = std::make_shared<std::function<void()>>();
      *next = [=]() mutable {
        self->request(echo, std::chrono::seconds(10), *left)
          .then(
            [=](int) mutable {
              if (--*left == count)
                *start = clock_type::now();
              if (*left == 0) {
                promise.deliver(since(*start) * 1e6 / count);
                *next = nullptr; // breaks the cycle
              } else {
                (*next)();
              }
            },
            [=](caf::error& e) mutable {
              promise.deliver(std::move(e));
              *next = nullptr;
            });
      };
      (*next)();
      return promise;
    }};
  });
  double us = -1;
  caf::scoped_actor self{system};
  self->request(pinger, std::chrono::minutes(5), n)
    .receive(
      [&](double x) { us = x; },
      [&](caf::error& e) { throw std::runtime_error("round trips failed: " + system.render(e)); });
  caf::anon_send_exit(pinger, caf::exit_reason::user_shutdown);
  return us;
}

caf::behavior echo_behaviour() {
  return {[](int x) {
    return x + 1;
  }};
}

// memcpy: the ceiling of any in-memory copy on this machine (GB/s).
double measure_memcpy(figures& f, double bytes, int repeats) {
  std::vector<char> from(static_cast<size_t>(bytes), 1), to(static_cast<size_t>(bytes), 0);
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = clock_type::now();
    std::memcpy(to.data(), from.data(), from.size());
    best = std::min(best, since(start));
  }
  const double memcpy_rate = bytes / best / 1e9;
  f.add("memcpy_gb_per_s", memcpy_rate);
  return memcpy_rate;
}

// local: a snapshot of the learner's tensors, then the copy into the tutor's.
void measure_local(figures& f, const named_tensors& source, double bytes,
                   const sync_options& options, const at::TensorOptions& tutor_dtype) {
  {
    local_weight_channel channel(1, std::chrono::minutes(5));
    auto target = weights(options.millions, 0.0f, tutor_dtype);
    double best = 1e30;
    for (int r = 0; r < options.repeats; ++r) {
      const auto start = clock_type::now();
      channel.offer(source, r);
      channel.take(target, r);
      best = std::min(best, since(start));
    }
    f.add("local_sync_s", best);
    f.add("local_gb_per_s", bytes / best / 1e9);
  }
}

// mpi: rank 0 (the learner root) to rank 1 (a tutor), in buckets.
void measure_mpi(figures& f, mpi::service& mpi, const named_tensors& source, double bytes,
                 double memcpy_rate, const sync_options& options,
                 const at::TensorOptions& tutor_dtype) {
  const auto& me = mpi.self();
  const auto pair = mpi.split({0, 1}, "bench weights");
  if (me.world_size >= 2) {
    if (pair.member()) {
      mpi_weight_channel channel(mpi, pair, options.bucket_mb << 20, 0, std::chrono::minutes(5));
      auto target = weights(options.millions, 0.0f, tutor_dtype);
      double best = 1e30;
      for (int r = 0; r < options.repeats; ++r) {
        mpi.barrier(pair, "bench start");
        const auto start = clock_type::now();
        if (pair.rank == 0)
          channel.offer(source, r);
        else
          channel.take(target, r);
        mpi.barrier(pair, "bench end"); // the sync ends when the tutor has it
        best = std::min(best, since(start));
      }
      if (pair.rank == 1 && last_value(target) != 1.5f)
        throw std::runtime_error("the mpi channel delivered wrong weights");
      f.add("mpi_sync_s", best);
      f.add("mpi_gb_per_s", bytes / best / 1e9);
      f.add("mpi_vs_memcpy", bytes / best / 1e9 / memcpy_rate);
    }
  } else {
    f.notes.push_back("mpi channel: start with mpirun -np 2 (or more) to measure it");
  }
  f.notes.push_back("nccl channel: not measured here (it needs a GPU per rank)");
}

// Actor round trips: one process, then rank 0 to rank 1 over the job's TLS network layer.
void measure_round_trips(figures& f, mpi::service& mpi, int64_t round_trips) {
  const auto& me = mpi.self();
  const auto& world = mpi.world_comm();
  if (round_trips > 0) {
    std::string blob;
    if (me.rank == 0)
      blob = job_tls::to_blob(job_tls::create("bench"));
    blob = mpi.broadcast(world, blob, 0, "bench TLS key");
    const auto folder =
      job_tls::write_private(job_tls::from_blob(blob), std::filesystem::temp_directory_path());
    {
      caf::actor_system_config sc;
      sc.load<caf::io::middleman>();
      job_tls::configure(sc, folder);
      caf::actor_system system{sc};
      auto echo = system.spawn(echo_behaviour);
      if (me.rank == 0)
        f.add("actor_round_trip_local_us", round_trip_us(system, echo, round_trips));
      std::string address;
      if (me.rank == 1) {
        auto port = caf::openssl::publish(echo, 0, "127.0.0.1", true);
        if (!port)
          throw std::runtime_error("publishing the echo failed: " + system.render(port.error()));
        address = std::to_string(*port);
      }
      address = mpi.broadcast(world, address, me.world_size >= 2 ? 1 : 0, "bench address");
      if (me.rank == 0 && me.world_size >= 2) {
        auto remote = caf::openssl::remote_actor(system, "127.0.0.1",
                                                 static_cast<uint16_t>(std::stoi(address)));
        if (!remote)
          throw std::runtime_error("reaching rank 1 failed: " + system.render(remote.error()));
        const double us = round_trip_us(system, *remote, round_trips);
        f.add("actor_round_trip_remote_us", us);
      }
      mpi.barrier(world, "bench round trips done");
      if (me.rank == 1)
        system.middleman().close(static_cast<uint16_t>(std::stoi(address)));
      caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
    }
    std::filesystem::remove_all(folder);
  }
}

} // namespace

figures sync(const sync_options& options) {
  if (options.local_only)
    return sync_local(options);
  if (options.device != "cpu")
    throw input_error("flag --device", "the mpi channel's bench runs on the CPU",
                      "add --local-only to time the weight sync on a device");
  const auto tutor_dtype =
    at::TensorOptions(options.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat);
  mpi::service mpi(/*collective_timeout_s=*/600);
  const auto& me = mpi.self();
  figures f;
  f.title = fmt::format("weight sync and actor round trips ({} rank(s))", me.world_size);
  const auto source = weights(options.millions, 1.5f);
  double bytes = 0;
  for (const auto& [name, t] : source)
    bytes += static_cast<double>(t.numel()) * 4;
  f.add("parameters_millions", options.millions);
  f.add("bytes_gb", bytes / 1e9);

  const double memcpy_rate = measure_memcpy(f, bytes, options.repeats);

  measure_local(f, source, bytes, options, tutor_dtype);

  measure_mpi(f, mpi, source, bytes, memcpy_rate, options, tutor_dtype);

  measure_round_trips(f, mpi, options.round_trips);
  if (me.rank != 0)
    return {}; // rank 0 reports for the job
  return f;
}

} // namespace pedagogy::bench
