// Stages 4-7 of a multi-rank training job (see rank_job.hpp and train_ranks.cpp):
//
//   4. communicators for the learners' gradient sums and the weight broadcast are split off
//   5. every rank spawns its own actors (learner, generators) with its own weight channel;
//      a failure on any rank is reported by rank 0 and every rank exits non-zero
//   6. ranks other than 0 publish their keeper (rank_watch.hpp) over CAF's network layer; the
//      addresses go to rank 0 over MPI, and rank 0 connects and asks each for its rank's actors
//   7. rank 0 runs the step loop, watching the other ranks; they serve their actors until rank 0
//      ends the job
#include "actors/rank_watch.hpp"
#include "collectives/mpi_data_parallel.hpp"
#include "collectives/weight_channel.hpp"
#include "jobs/rank_job.hpp"
#include "jobs/setup.hpp"
#include "runtime/errors.hpp"
#include "runtime/job_tls.hpp"
#include "runtime/signals.hpp"
#ifdef PEDAGOGY_HAVE_CUDA
#include "collectives/nccl_channel.hpp"
#endif

#include <ATen/Parallel.h>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

namespace pedagogy::actors {

namespace {

namespace fs = std::filesystem;

constexpr int failed = static_cast<int>(exit_code::failure);

// The index of `rank` in `ranks`, or -1.
int index_of(const std::vector<int>& ranks, int rank) {
  for (size_t i = 0; i < ranks.size(); ++i)
    if (ranks[i] == rank)
      return static_cast<int>(i);
  return -1;
}

// An actor this rank serves, as rank 0 will see it.
struct served {
  std::string role; // "learner", "tutor", "student", "judge"
  int index = 0;    // replica or learner index
  caf::actor handle;
};

// The job's TLS key files. CAF reads them for every new connection; there are none once rank 0
// is connected and the ports are closed, so the folder goes then (and on every way out before).
struct private_folder {
  fs::path path;
  void remove() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  ~private_folder() {
    remove();
  }
};

// Every way out once actors exist: stop them, finalise MPI (every rank does, so none waits on
// another), and leave without the actor system's destructor, which can wait forever on an actor
// a remote node still referenced when its connection dropped (CAF 0.17).
struct rank_exit {
  mpi::service& mpi;
  actor_stopper& stop;
  private_folder& tls;
  [[noreturn]] void operator()(int code) const {
    for (auto& a : stop.actors)
      if (a)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    tls.remove();
    mpi.finalize(); // actors still holding the service get errors, never a lone collective
    signals::exit_now(code);
  }
};

// Actor ports accept only this job: TLS with a key rank 0 makes and hands out over MPI, and every
// peer must prove it holds it (runtime/job_tls). A failure here is this rank's alone and no
// protocol reports it: end the job, saying why.
fs::path job_key_folder(const rank_job& job) {
  std::string blob;
  if (job.root) {
    try {
      blob = job_tls::to_blob(job_tls::create(fmt::format("pedagogy job on {}", job.me.node)));
    } catch (const std::exception& e) {
      job.mpi.abort(fmt::format("creating the job's TLS key failed: {}", e.what()));
    }
  }
  blob = job.mpi.broadcast(job.world, blob, 0, "the job's TLS key");
  try {
    return job_tls::write_private(job_tls::from_blob(blob), fs::temp_directory_path());
  } catch (const std::exception& e) {
    job.mpi.abort(fmt::format("writing the job's TLS key failed: {}", e.what()));
  }
}

// This rank's end of the weight channel (learner root and tutor replicas), or null.
std::shared_ptr<weight_channel> open_weight_channel(const rank_job& job, const placement& plan,
                                                    const mpi::communicator& weights) {
  if (!weights.member())
    return nullptr;
  int local_takers = 0;
  for (int t : plan.tutors)
    local_takers += t == plan.learner_root() && job.me.rank == t ? 1 : 0;
  const int64_t bucket = job.cfg.cluster.weight_bucket_mb * (int64_t{1} << 20);
  const auto timeout = request_timeout_of(job.cfg);
  if (plan.channel == "nccl") {
#ifdef PEDAGOGY_HAVE_CUDA
    const auto device = on_rank(job.cfg.tutor, job.me).device;
    const auto colon = device.find(':');
    return make_nccl_weight_channel(
      job.mpi, weights, colon == std::string::npos ? 0 : std::stoi(device.substr(colon + 1)),
      bucket, local_takers, timeout);
#else
    PEDAGOGY_CHECK(false, "the placement chose nccl in a build without CUDA");
#endif
  }
  return std::make_shared<mpi_weight_channel>(job.mpi, weights, bucket, local_takers, timeout);
}

// 5. The actors the placement gives this rank. A failure is returned in `failure`, for rank 0
// to report with every other rank's.
std::vector<served> spawn_rank_actors(const rank_job& job, caf::actor_system& system,
                                      const placement& plan, const run_start& start,
                                      const mpi::communicator& learners,
                                      const mpi::communicator& weights, std::string& failure) {
  const auto& cfg = job.cfg;
  const int rank = job.me.rank;
  std::vector<served> mine;
  try {
    const auto channel = open_weight_channel(job, plan, weights);
    if (const int index = index_of(plan.learners, rank); index >= 0) {
      auto ls = learner_setup_from(cfg, start.resume_dir, on_rank(cfg.tutor, job.me).device,
                                   start.total_steps);
      if (index == 0)
        ls.weights = channel;
      if (plan.learners.size() > 1)
        ls.peers = std::make_shared<mpi_data_parallel>(
          job.mpi, learners, cfg.cluster.weight_bucket_mb * (int64_t{1} << 20));
      ls.index = index;
      if (cfg.train.shard_optimizer && plan.learners.size() > 1) {
        ls.options.shard_rank = index;
        ls.options.shard_count = static_cast<int64_t>(plan.learners.size());
      }
      mine.push_back({"learner", index, caf::actor_cast<caf::actor>(spawn_learner(system, ls))});
    }
    if (const int index = index_of(plan.tutors, rank); index >= 0) {
      auto tutor = on_rank(cfg.tutor, job.me);
      if (!start.resume_dir.empty())
        tutor.model = start.resume_dir.string();
      mine.push_back(
        {"tutor", index,
         caf::actor_cast<caf::actor>(spawn_role_generator(system, tutor, "tutor", channel))});
    }
    if (const int index = index_of(plan.students, rank); index >= 0)
      mine.push_back({"student", index,
                      caf::actor_cast<caf::actor>(
                        spawn_role_generator(system, on_rank(cfg.student, job.me), "student"))});
    if (const int index = index_of(plan.judges, rank); index >= 0)
      mine.push_back({"judge", index,
                      caf::actor_cast<caf::actor>(
                        spawn_role_generator(system, on_rank(cfg.judge, job.me), "judge"))});
  } catch (const std::exception& e) {
    failure = e.what();
  }
  return mine;
}

// 6. A rank other than 0 publishes its keeper, the one actor rank 0 connects to: it lists the
// rank's actors and answers rank 0's pings (rank_watch.hpp). One port and one connection per
// rank: CAF 0.17 drops a second connection to a node it knows, and with it the proxies of the
// actors reached through it. Returns "host port", or sets `failure`.
std::string publish_keeper(const rank_job& job, caf::actor_system& system,
                           const std::vector<served>& mine, actor_stopper& stop, caf::actor& keeper,
                           uint16_t& keeper_port, std::string& failure) {
  const auto& cluster = job.cfg.cluster;
  std::vector<rank_actor> listed;
  for (const auto& s : mine)
    listed.push_back({s.role, s.index, s.handle});
  keeper = spawn_rank_keeper(system, std::move(listed));
  stop.actors.push_back(keeper);
  const auto host = cluster.host.empty() ? job.me.node : cluster.host;
  const char* bind = cluster.host.empty() ? nullptr : cluster.host.c_str();
  const uint16_t port = cluster.port == 0 ? 0 : rank_port(cluster.port, job.me.rank);
  auto published = caf::openssl::publish(keeper, port, bind, true);
  if (!published) {
    failure = fmt::format("publishing the rank's actors on port {} failed: {}", port,
                          system.render(published.error()));
    return {};
  }
  keeper_port = *published;
  return fmt::format("{} {}", host, keeper_port);
}

// Every rank's failure and keeper address, on every rank; a failure anywhere ends every rank,
// rank 0 saying which.
std::vector<std::string> gather_reports(const rank_job& job, const placement& plan,
                                        const std::string& failure, const std::string& address,
                                        const rank_exit& finish) {
  nlohmann::json report = {{"failure", failure}, {"address", address}};
  const auto reports =
    job.mpi.all_gather(job.world, report.dump(), "the actors of every rank", job.startup_limit_s);
  std::vector<std::string> failures;
  for (int r = 0; r < job.me.world_size; ++r) {
    auto j = nlohmann::json::parse(reports[static_cast<size_t>(r)]);
    if (!j["failure"].get<std::string>().empty())
      failures.push_back(
        fmt::format("rank {} ({}, {}): {}", r, job.mpi.world()[static_cast<size_t>(r)].node,
                    fmt::join(plan.roles_of(r), ", "), j["failure"].get<std::string>()));
  }
  if (!failures.empty()) {
    if (job.root)
      std::cerr << fmt::format("error: starting the actors failed on {} rank(s):\n  {}\n",
                               failures.size(), fmt::join(failures, "\n  "));
    finish(failed);
  }
  return reports;
}

// A rank other than 0, once its actors run: rank 0 connects; then the port closes (CAF 0.17 has
// no handshake timeout, so an open port is only a way in for strangers) and the connection
// stays. Closing also lets go of the actors, which the actor system's destructor waits for. The
// rank serves until rank 0 ends the job.
[[noreturn]] void serve_until_end(const rank_job& job, caf::actor_system& system,
                                  const caf::io::middleman_actor& network, caf::duration patience,
                                  const caf::actor& keeper, uint16_t keeper_port, size_t served,
                                  private_folder& tls, const rank_exit& finish) {
  const auto connected =
    job.mpi.all_gather(job.world, "", "rank 0 connecting to every rank", job.startup_limit_s);
  caf::scoped_actor self{system};
  self->request(network, patience, caf::unpublish_atom::value, keeper.address(), keeper_port)
    .receive([] {},
             [&](caf::error& e) {
               job.logger->warn("closing port {} failed: {}", keeper_port, system.render(e));
             });
  // Only now: CAF reads the key files for each connection it accepts, and throws (ending the
  // process) for a stranger's connection that arrives while the port is open without them.
  tls.remove();
  if (!connected.front().empty())
    finish(failed);
  job.logger->info("pid {}: serving {} actor(s) until rank 0 ends the job", ::getpid(), served);
  const int code = job.mpi.wait_for_end();
  if (signals::stop_requested() != 0)
    signals::exit_now(code); // the launcher is ending the job: no collective goodbye
  finish(code);
}

// 7. Rank 0 reaches every other rank's keeper (with a deadline) and adds the actors it lists to
// `found`, and the rank to `watch`. Returns why a rank was unreachable, or "".
std::string reach_ranks(const rank_job& job, caf::actor_system& system,
                        const caf::io::middleman_actor& network, caf::duration patience,
                        const placement& plan, const std::vector<std::string>& reports,
                        role_actors& found, rank_watch_options& watch) {
  for (int r = 1; r < job.me.world_size; ++r) {
    const auto& node = job.mpi.world()[static_cast<size_t>(r)].node;
    std::istringstream in(
      nlohmann::json::parse(reports[static_cast<size_t>(r)])["address"].get<std::string>());
    std::string host;
    uint16_t port = 0;
    in >> host >> port;
    caf::scoped_actor self{system};
    caf::actor proxy;
    std::string why = "no actor published there";
    // As caf::openssl::remote_actor, but with a deadline.
    self->request(network, patience, caf::connect_atom::value, host, port)
      .receive(
        [&](const caf::node_id&, caf::strong_actor_ptr& handle, const std::set<std::string>&) {
          proxy = caf::actor_cast<caf::actor>(std::move(handle));
        },
        [&](caf::error& e) { why = system.render(e); });
    std::vector<rank_actor> listed;
    if (proxy)
      self->request(proxy, patience, list_atom::value)
        .receive([&](std::vector<rank_actor>& actors) { listed = std::move(actors); },
                 [&](caf::error& e) {
                   proxy = nullptr;
                   why = "its keeper did not list its actors: " + system.render(e);
                 });
    if (!proxy)
      return fmt::format("rank 0 cannot reach rank {} ({}) at {}:{}: {}", r, node, host, port, why);
    const std::string where =
      fmt::format("rank {} ({}, {})", r, node, fmt::join(plan.roles_of(r), ", "));
    watch.ranks.push_back({r, where, proxy});
    watch.remote_actors[proxy.address()] = where;
    for (auto& a : listed) {
      const int index = static_cast<int>(a.index);
      watch.remote_actors[a.handle.address()] =
        fmt::format("rank {} ({}, {} {})", r, node, a.role, index);
      found.rank_of[{a.role, index}] = r;
      found.by_role[a.role][index] = std::move(a.handle);
    }
  }
  return {};
}

// Rank 0 watching the others. A rank that dies drops its connection: rank 0 says which one, and
// stops the job the way a signal would (the launcher is ending the other ranks at the same time).
// A rank that freezes ends the job at once; a signal sent to one rank alone stops the whole job
// (rank_watch.hpp). Returns the flag that says the other ranks now leave on purpose.
std::shared_ptr<std::atomic<bool>> watch_ranks(const rank_job& job, caf::actor_system& system,
                                               rank_watch_options watch, actor_stopper& stop) {
  auto ending = std::make_shared<std::atomic<bool>>(false);
  watch.unresponsive_timeout_s = job.cfg.cluster.unresponsive_timeout_s;
  watch.heartbeat = std::chrono::milliseconds(job.cfg.inspect.heartbeat_ms);
  watch.ending = [ending] {
    return ending->load();
  };
  watch.on_gone = [logger = job.logger](const std::string& message) {
    logger->critical("{}", message);
    signals::request_stop(SIGTERM);
  };
  watch.on_silent = [&mpi = job.mpi](const std::string& message) {
    // Requests to a frozen rank would wait for cluster.request_timeout_s: leave now. The
    // checkpoints on disk are whole (written aside and renamed), and so is every JSONL line.
    mpi.abort(message);
  };
  stop.actors.push_back(spawn_rank_watcher(system, std::move(watch)));
  return ending;
}

// The step loop's exit code; an error is printed here, as the command line would, since this
// process leaves through rank_exit.
int steps_exit_code(caf::actor_system& system, const rank_job& job,
                    const std::string& resolved_toml, prepared_run& run, const job_actors& actors) {
  try {
    return run_steps(system, job.cfg, resolved_toml, run, actors);
  } catch (const input_error& e) {
    std::cerr << describe(e) << '\n';
    return static_cast<int>(exit_code::bad_input);
  } catch (const std::exception& e) {
    job.logger->error("{}", e.what());
    std::cerr << "error: " << e.what() << '\n';
  }
  return failed;
}

} // namespace

void run_on_ranks(const rank_job& job, const std::string& resolved_toml, const placement& plan,
                  prepared_run& run, const run_start& start) {
  const auto& cfg = job.cfg;
  // 4. Communicators, split on every rank in the same order.
  const auto learners = job.mpi.split(plan.learners, "learners");
  const auto weights = job.mpi.split(plan.weight_group(), "weights");

  // 5. This rank's actors, in an actor system whose ports accept only this job.
  if (cfg.cluster.torch_threads > 0)
    at::set_num_threads(static_cast<int>(cfg.cluster.torch_threads));
  private_folder tls{job_key_folder(job)};
  caf::actor_system_config sc;
  configure_actor_system(sc, cfg, /*with_middleman=*/true);
  try {
    job_tls::configure(sc, tls.path);
  } catch (const std::exception& e) {
    job.mpi.abort(fmt::format("loading the job's TLS key failed: {}", e.what()));
  }
  caf::actor_system system{sc};
  auto network = system.openssl_manager().actor_handle();
  const caf::duration patience{std::chrono::seconds(
    cfg.cluster.collective_timeout_s > 0 ? static_cast<int64_t>(cfg.cluster.collective_timeout_s)
                                         : 600)};
  actor_stopper stop;
  const rank_exit finish{job.mpi, stop, tls};
  std::string failure;
  const auto mine = spawn_rank_actors(job, system, plan, start, learners, weights, failure);
  for (const auto& s : mine)
    stop.actors.push_back(s.handle);

  // 6. The other ranks' keepers, published; every rank's report gathered.
  caf::actor keeper;
  uint16_t keeper_port = 0;
  std::string address; // "host port" of this rank's keeper
  if (!job.root && failure.empty())
    address = publish_keeper(job, system, mine, stop, keeper, keeper_port, failure);
  const auto reports = gather_reports(job, plan, failure, address, finish);
  if (!job.root)
    serve_until_end(job, system, network, patience, keeper, keeper_port, mine.size(), tls, finish);

  // 7. Rank 0: the job's actors, local or reached over the network, then the step loop.
  role_actors found;
  for (const auto& s : mine)
    found.by_role[s.role][s.index] = s.handle;
  rank_watch_options watch;
  const std::string unreachable =
    reach_ranks(job, system, network, patience, plan, reports, found, watch);
  job.mpi.all_gather(job.world, unreachable, "rank 0 connecting to every rank",
                     job.startup_limit_s);
  tls.remove();
  if (!unreachable.empty()) {
    std::cerr << "error: " << unreachable
              << "; check cluster.host and the firewall between nodes\n";
    finish(failed);
  }
  const auto ending = watch_ranks(job, system, std::move(watch), stop);
  const job_actors actors = assemble_job(system, cfg, found, job.mpi.world(), stop);
  // The other ranks serve until rank 0 ends the job, with the step loop's exit code (a signal's
  // code too: the other ranks kept serving for the checkpoint, and leave with it).
  const int code = steps_exit_code(system, job, resolved_toml, run, actors);
  *ending = true;
  job.mpi.end(code);
  finish(code);
}

} // namespace pedagogy::actors
