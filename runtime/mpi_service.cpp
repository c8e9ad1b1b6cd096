// The thread that owns MPI (see mpi_service.hpp).
//
// Calls are blocking MPI collectives made on that thread (full speed, and Open MPI yields the
// core while it waits when the node is oversubscribed); a watchdog thread ends the process when
// one of them runs past the collective timeout, so a dead rank cannot hang the job. The launcher
// (mpirun, srun) then stops the other ranks.
#include "runtime/mpi_service.hpp"

#include "runtime/errors.hpp"
#include "runtime/logging.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace pedagogy::mpi {

namespace {

using clock_type = std::chrono::steady_clock;

void check(int rc, const std::string& call) {
  ranks::check_mpi(rc, call);
}

// MPI counts are ints: large buffers go in pieces of at most 1 GiB.
constexpr size_t max_piece = size_t{1} << 30;

} // namespace

struct service::impl {
  double timeout_s = 0;
  ranks::rank_info me;
  std::vector<ranks::rank_info> all;
  communicator world;
  std::vector<MPI_Comm> comms; // communicator id -> MPI handle; 0 is MPI_COMM_WORLD
  MPI_Comm control = MPI_COMM_NULL;

  std::thread thread;
  std::thread watchdog;
  std::mutex mutex;
  std::condition_variable wake;    // the MPI thread: a job, a stop
  std::condition_variable watched; // the watchdog: a call started or ended, a stop
  std::deque<std::packaged_task<void()>> jobs;
  bool stopping = false;      // the MPI thread: drain the jobs, finalise, end
  bool watchdog_done = false; // the watchdog: end (after the MPI thread has)

  // What the MPI thread is waiting for, for the watchdog, and for how long it may.
  double current_limit_s = 0;
  std::string current;
  clock_type::time_point current_since;
  bool busy = false;

  // The end of the job, as seen by a rank other than 0.
  bool end_posted = false;
  int end_code = 0;
  MPI_Request end_request = MPI_REQUEST_NULL;
  std::promise<int> ended;

  // Runs `f` on the MPI thread and returns its result (exceptions travel back).
  template <class F>
  auto call(F&& f) -> decltype(f()) {
    using result = decltype(f());
    std::packaged_task<result()> task(std::forward<F>(f));
    auto future = task.get_future();
    if constexpr (std::is_void_v<result>) {
      {
        std::lock_guard guard{mutex};
        if (stopping)
          throw std::runtime_error("MPI is finalised: no more collectives in this process");
        jobs.emplace_back(std::move(task));
      }
      wake.notify_one();
      future.get();
    } else {
      // packaged_task<void()> holds the typed task; the future keeps the value.
      auto shared = std::make_shared<std::packaged_task<result()>>(std::move(task));
      {
        std::lock_guard guard{mutex};
        if (stopping)
          throw std::runtime_error("MPI is finalised: no more collectives in this process");
        jobs.emplace_back([shared] { (*shared)(); });
      }
      wake.notify_one();
      return future.get();
    }
  }

  // Brackets a blocking MPI call for the watchdog.
  struct watched_call {
    impl& s;
    // `limit_s` < 0: the service's collective timeout.
    watched_call(impl& service, std::string what, double limit_s = -1) : s(service) {
      std::lock_guard guard{s.mutex};
      s.current = std::move(what);
      s.current_since = clock_type::now();
      s.current_limit_s = limit_s < 0 ? s.timeout_s : limit_s;
      s.busy = true;
      s.watched.notify_all();
    }
    ~watched_call() {
      std::lock_guard guard{s.mutex};
      s.busy = false;
    }
  };

  std::string describe(const communicator& comm, const std::string& what) const {
    return fmt::format("{} on communicator '{}' (world ranks {})", what, comm.name,
                       fmt::join(comm.members, ", "));
  }

  MPI_Comm handle(const communicator& comm) const {
    PEDAGOGY_CHECK(comm.id >= 0 && static_cast<size_t>(comm.id) < comms.size() && comm.member(),
                   "communicator '{}' used on rank {} which is not a member", comm.name, me.rank);
    return comms[static_cast<size_t>(comm.id)];
  }

  void run_thread(std::promise<void>& ready) {
    try {
      me = ranks::this_process(/*force_mpi=*/true);
    } catch (...) {
      ready.set_exception(std::current_exception());
      return;
    }
    // Everyone's description on every rank, gathered once.
    all = ranks::gather_everywhere(me);
    comms.push_back(MPI_COMM_WORLD);
    world.id = 0;
    world.rank = me.rank;
    world.size = me.world_size;
    world.name = "world";
    for (int r = 0; r < me.world_size; ++r)
      world.members.push_back(r);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &control), "MPI_Comm_dup");
    ready.set_value();

    std::unique_lock lock{mutex};
    while (true) {
      if (!jobs.empty()) {
        auto job = std::move(jobs.front());
        jobs.pop_front();
        lock.unlock();
        job();
        lock.lock();
        continue;
      }
      if (stopping)
        break;
      if (end_posted) {
        // Polled between jobs, so weight broadcasts keep flowing while a rank waits for the end.
        lock.unlock();
        int done = 0;
        check(MPI_Test(&end_request, &done, MPI_STATUS_IGNORE), "MPI_Test(end of job)");
        lock.lock();
        if (done) {
          end_posted = false;
          ended.set_value(end_code);
          continue;
        }
        wake.wait_for(lock, std::chrono::milliseconds(2));
        continue;
      }
      wake.wait(lock);
    }
    lock.unlock();
    if (end_posted) {
      // This rank leaves before rank 0 said so: nothing left to finalise cleanly.
      return;
    }
    watched_call w(*this, "MPI_Finalize (every rank leaving together)");
    MPI_Comm_free(&control);
    for (size_t i = 1; i < comms.size(); ++i)
      if (comms[i] != MPI_COMM_NULL)
        MPI_Comm_free(&comms[i]);
    ranks::finalize();
  }

  void run_watchdog() {
    std::unique_lock lock{mutex};
    while (!watchdog_done) {
      if (!busy || current_limit_s <= 0) {
        watched.wait_for(lock, std::chrono::milliseconds(500));
        continue;
      }
      const auto limit = current_since + std::chrono::duration_cast<clock_type::duration>(
                                           std::chrono::duration<double>(current_limit_s));
      if (clock_type::now() < limit) {
        watched.wait_until(lock, std::min(limit, clock_type::now() + std::chrono::seconds(1)));
        continue;
      }
      const auto message = fmt::format(
        "rank {} ({}): {} did not finish in {} s (cluster.collective_timeout_s); a rank of it has "
        "died or stopped answering. Ending the job; continue it with --resume",
        me.rank, me.node, current, current_limit_s);
      lock.unlock();
      log::get("mpi")->critical("{}", message);
      log::flush();
      std::fprintf(stderr, "error: %s\n", message.c_str());
      std::fflush(stderr);
      std::_Exit(1);
    }
  }
};

service::service(double collective_timeout_s) : impl_(std::make_unique<impl>()) {
  impl_->timeout_s = collective_timeout_s;
  std::promise<void> ready;
  auto started = ready.get_future();
  impl_->thread = std::thread([this, &ready] { impl_->run_thread(ready); });
  try {
    started.get();
  } catch (...) {
    impl_->thread.join();
    throw;
  }
  impl_->watchdog = std::thread([this] { impl_->run_watchdog(); });
}

service::~service() {
  finalize();
}

void service::finalize() {
  if (!impl_->thread.joinable())
    return;
  {
    std::lock_guard guard{impl_->mutex};
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  // The jobs still queued and MPI_Finalize run under the watchdog; it stops after them.
  impl_->thread.join();
  {
    std::lock_guard guard{impl_->mutex};
    impl_->watchdog_done = true;
  }
  impl_->watched.notify_all();
  impl_->watchdog.join();
}

const ranks::rank_info& service::self() const {
  return impl_->me;
}

const std::vector<ranks::rank_info>& service::world() const {
  return impl_->all;
}

double service::collective_timeout_s() const {
  return impl_->timeout_s;
}

const communicator& service::world_comm() const {
  return impl_->world;
}

communicator service::split(const std::vector<int>& members, const std::string& name) {
  return impl_->call([&] {
    communicator c;
    c.name = name;
    c.members = members;
    int key = -1;
    for (size_t i = 0; i < members.size(); ++i)
      if (members[i] == impl_->me.rank)
        key = static_cast<int>(i);
    MPI_Comm made = MPI_COMM_NULL;
    {
      impl::watched_call w(*impl_, impl_->describe(impl_->world, "MPI_Comm_split(" + name + ")"));
      check(MPI_Comm_split(MPI_COMM_WORLD, key >= 0 ? 0 : MPI_UNDEFINED, key, &made),
            "MPI_Comm_split(" + name + ")");
    }
    c.size = static_cast<int>(members.size());
    if (key >= 0) {
      c.rank = key;
      c.id = static_cast<int>(impl_->comms.size());
      impl_->comms.push_back(made);
    }
    return c;
  });
}

void service::broadcast(const communicator& comm, void* data, size_t bytes, int root,
                        const std::string& what, double limit_s) {
  impl_->call([&] {
    MPI_Comm h = impl_->handle(comm);
    impl::watched_call w(*impl_, impl_->describe(comm, what), limit_s);
    auto* p = static_cast<char*>(data);
    for (size_t done = 0; done < bytes; done += max_piece) {
      const auto n = static_cast<int>(std::min(max_piece, bytes - done));
      check(MPI_Bcast(p + done, n, MPI_BYTE, root, h), "MPI_Bcast(" + what + ")");
    }
  });
}

std::string service::broadcast(const communicator& comm, std::string text, int root,
                               const std::string& what, double limit_s) {
  uint64_t length = text.size();
  broadcast(comm, &length, sizeof length, root, what + " (length)", limit_s);
  text.resize(length);
  broadcast(comm, text.data(), length, root, what, limit_s);
  return text;
}

namespace {

// In-place MPI_SUM of `count` values of `type` (pieces of at most 1 GiB), on the MPI thread.
template <class T>
void sum_in_place(MPI_Comm h, T* data, size_t count, MPI_Datatype type, const std::string& what) {
  const size_t piece = max_piece / sizeof(T);
  for (size_t done = 0; done < count; done += piece) {
    const auto n = static_cast<int>(std::min(piece, count - done));
    check(MPI_Allreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, h),
          "MPI_Allreduce(" + what + ")");
  }
}

} // namespace

void service::sum(const communicator& comm, float* data, size_t count, const std::string& what) {
  impl_->call([&] {
    impl::watched_call w(*impl_, impl_->describe(comm, what));
    sum_in_place(impl_->handle(comm), data, count, MPI_FLOAT, what);
  });
}

void service::sum(const communicator& comm, double* data, size_t count, const std::string& what) {
  impl_->call([&] {
    impl::watched_call w(*impl_, impl_->describe(comm, what));
    sum_in_place(impl_->handle(comm), data, count, MPI_DOUBLE, what);
  });
}

std::vector<std::string> service::all_gather(const communicator& comm, const std::string& text,
                                             const std::string& what, double limit_s) {
  return impl_->call([&] {
    MPI_Comm h = impl_->handle(comm);
    impl::watched_call w(*impl_, impl_->describe(comm, what), limit_s);
    int length = static_cast<int>(text.size());
    std::vector<int> lengths(static_cast<size_t>(comm.size));
    check(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, h),
          "MPI_Allgather(" + what + ")");
    std::vector<int> offsets(lengths.size());
    int total = 0;
    for (size_t i = 0; i < lengths.size(); ++i) {
      offsets[i] = total;
      total += lengths[i];
    }
    std::string joined(static_cast<size_t>(total), '\0');
    check(MPI_Allgatherv(text.data(), length, MPI_CHAR, joined.data(), lengths.data(),
                         offsets.data(), MPI_CHAR, h),
          "MPI_Allgatherv(" + what + ")");
    std::vector<std::string> out;
    for (size_t i = 0; i < lengths.size(); ++i)
      out.push_back(
        joined.substr(static_cast<size_t>(offsets[i]), static_cast<size_t>(lengths[i])));
    return out;
  });
}

void service::barrier(const communicator& comm, const std::string& what) {
  impl_->call([&] {
    MPI_Comm h = impl_->handle(comm);
    impl::watched_call w(*impl_, impl_->describe(comm, what));
    check(MPI_Barrier(h), "MPI_Barrier(" + what + ")");
  });
}

void service::end(int code) {
  PEDAGOGY_CHECK(impl_->me.rank == 0, "only rank 0 ends the job");
  impl_->call([&] {
    int value = code;
    MPI_Request request = MPI_REQUEST_NULL;
    impl::watched_call w(*impl_, "the end of the job (every rank acknowledging)");
    check(MPI_Ibcast(&value, 1, MPI_INT, 0, impl_->control, &request), "MPI_Ibcast(end)");
    check(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait(end)");
  });
}

int service::wait_for_end() {
  PEDAGOGY_CHECK(impl_->me.rank != 0, "rank 0 ends the job, it does not wait for the end");
  auto ended = impl_->ended.get_future();
  impl_->call([&] {
    check(MPI_Ibcast(&impl_->end_code, 1, MPI_INT, 0, impl_->control, &impl_->end_request),
          "MPI_Ibcast(end)");
    impl_->end_posted = true;
  });
  // A first SIGINT/SIGTERM (Ctrl-C under mpirun, Slurm's warning) reaches every rank: this one
  // keeps serving so that rank 0 can finish its step and checkpoint; rank 0 then ends the job.
  // A second signal exits at once (signals.hpp), and a launcher whose rank died ends the rest.
  return ended.get();
}

void service::abort(const std::string& message, int code) {
  log::get("mpi")->critical("rank {} ({}): {}", impl_->me.rank, impl_->me.node, message);
  log::flush();
  std::fprintf(stderr, "error: rank %d (%s): %s\n", impl_->me.rank, impl_->me.node.c_str(),
               message.c_str());
  std::fflush(stderr);
  // MPI_Abort from this thread would break the one-thread rule; the launcher stops the rest.
  std::_Exit(code);
}

} // namespace pedagogy::mpi
