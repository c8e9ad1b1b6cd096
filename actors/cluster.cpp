// A training job over MPI ranks (DESIGN §7): every rank runs this, from the same config.
//
//   1. the MPI thread starts; every rank knows every rank's node and device
//   1b. every rank compares its resolved config with rank 0's; a difference stops the job
//   2. the placement is planned from the config on every rank (the same answer everywhere);
//      rank 0 prints it as a table, or the error naming the knob, before anything loads
//   3. rank 0 prepares the run (run folder, lock, resume, random-init models) and broadcasts
//      where the run starts; every rank checks that it sees the run folder rank 0 wrote into
//   4. communicators for the learners' gradient sums and the weight broadcast are split off
//   5. every rank spawns its own actors (learner, generators) with its own weight channel;
//      a failure on any rank is reported by rank 0 and every rank exits non-zero
//   6. ranks other than 0 publish their keeper (rank_watch.hpp) over CAF's network layer; the
//      addresses go to rank 0 over MPI, and rank 0 connects and asks each for its rank's actors
//   7. rank 0 runs the step loop, watching the other ranks; they serve their actors until rank 0
//      ends the job
#include "actors/checkpoints.hpp"
#include "actors/inspector_actor.hpp"
#include "actors/memory_plan.hpp"
#include "actors/placement.hpp"
#include "actors/preflight.hpp"
#include "actors/rank_watch.hpp"
#include "actors/replica_router.hpp"
#include "actors/setup.hpp"
#include "actors/training_run.hpp"
#include "config/config.hpp"
#include "runtime/data_parallel.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/job_tls.hpp"
#include "runtime/logging.hpp"
#include "runtime/mpi_service.hpp"
#ifdef PEDAGOGY_HAVE_CUDA
#include "runtime/nccl_channel.hpp"
#endif
#include "runtime/signals.hpp"
#include "runtime/weight_channel.hpp"

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
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

namespace pedagogy::actors {

namespace {

namespace fs = std::filesystem;

// A role's device on this rank: "auto" is the rank's own (cuda:<local rank>, or cpu).
config::role_config on_this_rank(config::role_config role, const ranks::rank_info& me) {
  if (role.device == "auto")
    role.device = me.device;
  return role;
}

// The index of `rank` in `ranks`, or -1.
int index_of(const std::vector<int>& ranks, int rank) {
  for (size_t i = 0; i < ranks.size(); ++i)
    if (ranks[i] == rank)
      return static_cast<int>(i);
  return -1;
}

std::string random_token() {
  std::random_device device;
  return fmt::format("{:016x}{:08x}", (static_cast<uint64_t>(device()) << 32) | device(),
                     static_cast<unsigned>(::getpid()));
}

// An actor this rank serves, as rank 0 will see it.
struct served {
  std::string role; // "learner", "tutor", "student", "judge"
  int index = 0;    // replica or learner index
  caf::actor handle;
};

} // namespace

int train_multi_rank(const config::config& cfg, const std::string& resolved_toml,
                     const train_options& opts) {
  auto mpi_owner = std::make_unique<mpi::service>(cfg.cluster.collective_timeout_s);
  auto& mpi = *mpi_owner;
  const auto& me = mpi.self();
  const auto& world = mpi.world_comm();
  const bool root = me.rank == 0;
  auto logger = log::get("cluster");

  // 1b. Every rank runs rank 0's config: a rank started with another one (a wrapper script, an
  // edited file on one node) would train, place or sync by other rules, silently.
  {
    const auto reference = mpi.broadcast(world, root ? resolved_toml : std::string(), 0,
                                         "rank 0's config, for the config check");
    const auto mine = config::differences(resolved_toml, reference);
    const auto all =
      mpi.all_gather(world, fmt::format("{}", fmt::join(mine, "; ")), "the config check");
    std::map<std::string, std::vector<int>> ranks_with; // the same difference once, with its ranks
    for (int r = 1; r < me.world_size; ++r)
      if (!all[static_cast<size_t>(r)].empty())
        ranks_with[all[static_cast<size_t>(r)]].push_back(r);
    std::vector<std::string> mismatched;
    for (const auto& [difference, ranks] : ranks_with)
      mismatched.push_back(fmt::format("rank(s) {} have {} (their value vs rank 0's)",
                                       fmt::join(ranks, ", "), difference));
    if (!mismatched.empty()) {
      if (!root)
        return static_cast<int>(exit_code::bad_input);
      throw input_error("--config",
                        fmt::format("the ranks were started with different configs: {}",
                                    fmt::join(mismatched, "; ")),
                        "start every rank with the same --config file and overrides");
    }
  }

  // 2. Placement: every rank computes the same answer; rank 0 speaks for all of them.
  // NCCL needs a GPU on every rank of the weight group; asking for it needs one on every rank.
  bool has_cuda = true;
  for (const auto& r : mpi.world())
    has_cuda = has_cuda && r.device.rfind("cuda", 0) == 0;
  // The start of a job waits on ranks loading models and connecting: longer than a collective.
  const double startup_limit_s = 4 * mpi.collective_timeout_s();
  placement plan;
  memory_plan memory;
  try {
    plan = plan_placement(cfg, me.world_size, has_cuda);
    check_inspect_config(cfg.inspect);
    // Every rank computes the same plan; a rank on a GPU whose size is not configured assumes
    // its own device's for every GPU rank (one kind of node per job).
    const double own = device_capacity_bytes(cfg, me.device);
    memory = plan_memory(
      cfg, plan, shapes_from_config(cfg),
      [&](int r) {
        return cfg.cluster.device_memory_gib > 0 ||
                   mpi.world()[static_cast<size_t>(r)].device.rfind("cuda", 0) == 0
                 ? own
                 : 0.0;
      },
      has_cuda);
    if (root)
      logger->info("memory plan per device:\n{}", memory.table());
    check_memory_plan(memory);
  } catch (const input_error&) {
    if (root)
      throw;
    return static_cast<int>(exit_code::bad_input);
  }
  if (opts.make_student) {
    if (!root)
      return static_cast<int>(exit_code::bad_input);
    throw input_error("cluster.mode", "a scripted student is a local-mode test helper",
                      "run it with cluster.mode = \"local\"");
  }
  if (root)
    logger->info(
      "{} ranks on {} node(s):\n{}", me.world_size,
      [&] {
        std::set<std::string> nodes;
        for (const auto& r : mpi.world())
          nodes.insert(r.node);
        return nodes.size();
      }(),
      placement_table(plan, mpi.world()));

  // 3. Rank 0 prepares the run; everyone learns where it starts, or why it does not.
  prepared_run run;
  nlohmann::json start;
  const auto seed = static_cast<uint64_t>(cfg.train.seed);
  if (root) {
    try {
      check_before_loading(cfg);
      run = prepare_run(cfg, resolved_toml, opts);
      ensure_model(cfg.tutor, "tutor", seed);
      ensure_model(cfg.student, "student", seed + 1);
      if (needs_judge_generator(cfg))
        ensure_model(cfg.judge, "judge", seed + 2);
      const auto token = random_token();
      files::write_atomically(run.run_dir / ".pedagogy-shared-check", token);
      start = {{"token", token},
               {"resume_dir", run.resume_dir.string()},
               {"start_step", run.start_step},
               {"total_steps", run.total_steps}};
    } catch (const input_error& e) {
      start = {{"error", describe(e)}, {"code", static_cast<int>(exit_code::bad_input)}};
      mpi.broadcast(world, start.dump(), 0, "the start of the run", startup_limit_s);
      throw;
    } catch (const std::exception& e) {
      start = {{"error", e.what()}, {"code", static_cast<int>(exit_code::failure)}};
      mpi.broadcast(world, start.dump(), 0, "the start of the run", startup_limit_s);
      throw;
    }
  }
  start = nlohmann::json::parse(
    mpi.broadcast(world, start.dump(), 0, "the start of the run", startup_limit_s));
  if (start.contains("error"))
    return start["code"].get<int>();
  const fs::path run_dir = cfg.logging.run_dir;
  const fs::path resume_dir = start["resume_dir"].get<std::string>();
  const auto total_steps = start["total_steps"].get<int64_t>();

  // Every rank must read and write the run's files: rank 0 wrote a token, each rank reads it.
  std::string seen;
  {
    std::ifstream in(run_dir / ".pedagogy-shared-check");
    std::getline(in, seen);
  }
  const auto sightings = mpi.all_gather(
    world, seen == start["token"].get<std::string>() ? "yes" : "no", "the shared run folder check");
  std::vector<std::string> blind;
  for (int r = 0; r < me.world_size; ++r)
    if (sightings[static_cast<size_t>(r)] != "yes")
      blind.push_back(fmt::format("rank {} on {}", r, mpi.world()[static_cast<size_t>(r)].node));
  if (!blind.empty()) {
    if (!root)
      return static_cast<int>(exit_code::bad_input);
    fs::remove(run_dir / ".pedagogy-shared-check");
    throw input_error("logging.run_dir",
                      fmt::format("'{}' is not shared by every rank: {} cannot see what rank 0 "
                                  "wrote there",
                                  run_dir.string(), fmt::join(blind, ", ")),
                      "put logging.run_dir (and the model folders) on a file system every node "
                      "mounts, e.g. a cluster's /scratch or home");
  }
  if (root) {
    fs::remove(run_dir / ".pedagogy-shared-check");
    logger->info("run folder {} is shared by all {} ranks (checked)", run_dir.string(),
                 me.world_size);
  }

  // 4. Communicators, split on every rank in the same order.
  const auto learners = mpi.split(plan.learners, "learners");
  const auto weights = mpi.split(plan.weight_group(), "weights");

  // 5. This rank's actors.
  if (cfg.cluster.torch_threads > 0)
    at::set_num_threads(static_cast<int>(cfg.cluster.torch_threads));
  // Actor ports accept only this job: TLS with a key rank 0 makes and hands out over MPI, and
  // every peer must prove it holds it (runtime/job_tls).
  // A failure here is this rank's alone and no protocol reports it: end the job, saying why.
  std::string blob;
  if (root) {
    try {
      blob = job_tls::to_blob(job_tls::create(fmt::format("pedagogy job on {}", me.node)));
    } catch (const std::exception& e) {
      mpi.abort(fmt::format("creating the job's TLS key failed: {}", e.what()));
    }
  }
  blob = mpi.broadcast(world, blob, 0, "the job's TLS key");
  fs::path key_folder;
  try {
    key_folder = job_tls::write_private(job_tls::from_blob(blob), fs::temp_directory_path());
  } catch (const std::exception& e) {
    mpi.abort(fmt::format("writing the job's TLS key failed: {}", e.what()));
  }
  // CAF reads the key files for every new connection; there are none once rank 0 is connected
  // and the ports are closed, so the folder goes then (and on every way out before).
  struct private_folder {
    fs::path path;
    void remove() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
    ~private_folder() {
      remove();
    }
  } tls{key_folder};
  caf::actor_system_config sc;
  configure_actor_system(sc, cfg, /*with_middleman=*/true);
  try {
    job_tls::configure(sc, tls.path);
  } catch (const std::exception& e) {
    mpi.abort(fmt::format("loading the job's TLS key failed: {}", e.what()));
  }
  caf::actor_system system{sc};
  auto network = system.openssl_manager().actor_handle();
  const caf::duration patience{std::chrono::seconds(
    cfg.cluster.collective_timeout_s > 0 ? static_cast<int64_t>(cfg.cluster.collective_timeout_s)
                                         : 600)};
  actor_stopper stop;
  // Every way out once actors exist: stop them, finalise MPI (every rank does, so none waits on
  // another), and leave without the actor system's destructor, which can wait forever on an
  // actor a remote node still referenced when its connection dropped (CAF 0.17).
  auto finish = [&](int code) {
    for (auto& a : stop.actors)
      if (a)
        caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    tls.remove();
    mpi.finalize(); // actors still holding the service get errors, never a lone collective
    signals::exit_now(code);
  };
  std::vector<served> mine;
  const auto timeout = request_timeout_of(cfg);
  std::string failure;
  try {
    std::shared_ptr<weight_channel> channel;
    if (weights.member()) {
      int local_takers = 0;
      for (int t : plan.tutors)
        local_takers += t == plan.learner_root() && me.rank == t ? 1 : 0;
      const int64_t bucket = cfg.cluster.weight_bucket_mb * (int64_t{1} << 20);
      if (plan.channel == "nccl") {
#ifdef PEDAGOGY_HAVE_CUDA
        const auto device = on_this_rank(cfg.tutor, me).device;
        const auto colon = device.find(':');
        channel = make_nccl_weight_channel(
          mpi, weights, colon == std::string::npos ? 0 : std::stoi(device.substr(colon + 1)),
          bucket, local_takers, timeout);
#else
        PEDAGOGY_CHECK(false, "the placement chose nccl in a build without CUDA");
#endif
      } else {
        channel = std::make_shared<mpi_weight_channel>(mpi, weights, bucket, local_takers, timeout);
      }
    }
    if (const int index = index_of(plan.learners, me.rank); index >= 0) {
      learner_setup ls;
      ls.model = cfg.tutor.model;
      ls.resume = resume_dir;
      ls.device = on_this_rank(cfg.tutor, me).device;
      if (index == 0)
        ls.weights = channel;
      if (plan.learners.size() > 1)
        ls.peers = std::make_shared<mpi_data_parallel>(
          mpi, learners, cfg.cluster.weight_bucket_mb * (int64_t{1} << 20));
      ls.index = index;
      ls.options = learner_options_from(cfg, total_steps);
      if (cfg.train.shard_optimizer && plan.learners.size() > 1) {
        ls.options.shard_rank = index;
        ls.options.shard_count = static_cast<int64_t>(plan.learners.size());
      }
      ls.spike = spike_options_from(cfg);
      mine.push_back({"learner", index, caf::actor_cast<caf::actor>(spawn_learner(system, ls))});
    }
    if (const int index = index_of(plan.tutors, me.rank); index >= 0) {
      auto tutor = on_this_rank(cfg.tutor, me);
      if (!resume_dir.empty())
        tutor.model = resume_dir.string();
      mine.push_back(
        {"tutor", index,
         caf::actor_cast<caf::actor>(spawn_role_generator(system, tutor, "tutor", channel))});
    }
    if (const int index = index_of(plan.students, me.rank); index >= 0)
      mine.push_back({"student", index,
                      caf::actor_cast<caf::actor>(
                        spawn_role_generator(system, on_this_rank(cfg.student, me), "student"))});
    if (const int index = index_of(plan.judges, me.rank); index >= 0)
      mine.push_back({"judge", index,
                      caf::actor_cast<caf::actor>(
                        spawn_role_generator(system, on_this_rank(cfg.judge, me), "judge"))});
  } catch (const std::exception& e) {
    failure = e.what();
  }
  for (const auto& s : mine)
    stop.actors.push_back(s.handle);

  // 6. Ranks other than 0 publish their keeper, the one actor rank 0 connects to: it lists the
  // rank's actors and answers rank 0's pings (rank_watch.hpp). One port and one connection per
  // rank: CAF 0.17 drops a second connection to a node it knows, and with it the proxies of the
  // actors reached through it. The address goes to rank 0; a failure anywhere ends every rank.
  caf::actor keeper;
  std::string address; // "host port" of this rank's keeper
  uint16_t keeper_port = 0;
  if (!root && failure.empty()) {
    std::vector<rank_actor> listed;
    for (const auto& s : mine)
      listed.push_back({s.role, s.index, s.handle});
    keeper = spawn_rank_keeper(system, std::move(listed));
    stop.actors.push_back(keeper);
    const auto host = cfg.cluster.host.empty() ? me.node : cfg.cluster.host;
    const char* bind = cfg.cluster.host.empty() ? nullptr : cfg.cluster.host.c_str();
    const uint16_t port = cfg.cluster.port == 0 ? 0 : rank_port(cfg.cluster.port, me.rank);
    auto published = caf::openssl::publish(keeper, port, bind, true);
    if (published) {
      keeper_port = *published;
      address = fmt::format("{} {}", host, keeper_port);
    } else {
      failure = fmt::format("publishing the rank's actors on port {} failed: {}", port,
                            system.render(published.error()));
    }
  }
  nlohmann::json report = {{"failure", failure}, {"address", address}};
  const auto reports =
    mpi.all_gather(world, report.dump(), "the actors of every rank", startup_limit_s);
  std::vector<std::string> failures;
  for (int r = 0; r < me.world_size; ++r) {
    auto j = nlohmann::json::parse(reports[static_cast<size_t>(r)]);
    if (!j["failure"].get<std::string>().empty())
      failures.push_back(
        fmt::format("rank {} ({}, {}): {}", r, mpi.world()[static_cast<size_t>(r)].node,
                    fmt::join(plan.roles_of(r), ", "), j["failure"].get<std::string>()));
  }
  if (!failures.empty()) {
    if (root)
      std::cerr << fmt::format("error: starting the actors failed on {} rank(s):\n  {}\n",
                               failures.size(), fmt::join(failures, "\n  "));
    finish(static_cast<int>(exit_code::failure));
  }

  if (!root) {
    // Rank 0 connects now; once it has, the ports close (CAF 0.17 has no handshake timeout, so
    // an open port is only a way in for strangers) and the connections stay. Closing also lets
    // go of the actors, which the actor system's destructor waits for.
    const auto connected =
      mpi.all_gather(world, "", "rank 0 connecting to every rank", startup_limit_s);
    caf::scoped_actor self{system};
    self->request(network, patience, caf::unpublish_atom::value, keeper.address(), keeper_port)
      .receive([] {},
               [&](caf::error& e) {
                 logger->warn("closing port {} failed: {}", keeper_port, system.render(e));
               });
    // Only now: CAF reads the key files for each connection it accepts, and throws (ending the
    // process) for a stranger's connection that arrives while the port is open without them.
    tls.remove();
    if (!connected.front().empty())
      finish(static_cast<int>(exit_code::failure));
    logger->info("pid {}: serving {} actor(s) until rank 0 ends the job", ::getpid(), mine.size());
    const int code = mpi.wait_for_end();
    if (signals::stop_requested() != 0)
      signals::exit_now(code); // the launcher is ending the job: no collective goodbye
    finish(code);
  }

  // 7. Rank 0: the job's actors, local or reached over the network, then the step loop. Each
  // rank's keeper, reached with a deadline, lists that rank's actors.
  std::map<std::string, std::map<int, caf::actor>> found;
  std::map<std::pair<std::string, int>, int> rank_of; // (role, index) -> rank
  std::string unreachable;
  for (const auto& s : mine)
    found[s.role][s.index] = s.handle;
  rank_watch_options watch;
  for (int r = 1; r < me.world_size && unreachable.empty(); ++r) {
    const auto& node = mpi.world()[static_cast<size_t>(r)].node;
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
    if (!proxy) {
      unreachable =
        fmt::format("rank 0 cannot reach rank {} ({}) at {}:{}: {}", r, node, host, port, why);
      break;
    }
    const std::string where =
      fmt::format("rank {} ({}, {})", r, node, fmt::join(plan.roles_of(r), ", "));
    watch.ranks.push_back({r, where, proxy});
    watch.remote_actors[proxy.address()] = where;
    for (auto& a : listed) {
      const int index = static_cast<int>(a.index);
      watch.remote_actors[a.handle.address()] =
        fmt::format("rank {} ({}, {} {})", r, node, a.role, index);
      rank_of[{a.role, index}] = r;
      found[a.role][index] = std::move(a.handle);
    }
  }
  mpi.all_gather(world, unreachable, "rank 0 connecting to every rank", startup_limit_s);
  tls.remove();
  if (!unreachable.empty()) {
    std::cerr << "error: " << unreachable
              << "; check cluster.host and the firewall between nodes\n";
    finish(static_cast<int>(exit_code::failure));
  }
  // A rank that dies drops its connection: rank 0 says which one, and stops the job the way a
  // signal would (the launcher is ending the other ranks at the same time). A rank that freezes
  // ends the job at once; a signal sent to one rank alone stops the whole job (rank_watch.hpp).
  auto ending = std::make_shared<std::atomic<bool>>(false); // the other ranks leave on purpose
  watch.unresponsive_timeout_s = cfg.cluster.unresponsive_timeout_s;
  watch.heartbeat = std::chrono::milliseconds(cfg.inspect.heartbeat_ms);
  watch.ending = [ending] {
    return ending->load();
  };
  watch.on_gone = [logger](const std::string& message) {
    logger->critical("{}", message);
    signals::request_stop(SIGTERM);
  };
  watch.on_silent = [&mpi](const std::string& message) {
    // Requests to a frozen rank would wait for cluster.request_timeout_s: leave now. The
    // checkpoints on disk are whole (written aside and renamed), and so is every JSONL line.
    mpi.abort(message);
  };
  stop.actors.push_back(spawn_rank_watcher(system, std::move(watch)));
  job_actors actors;
  // The inspector watches every rank's actors, each labelled with where the placement put it.
  for (const auto& [role, handles] : found)
    for (const auto& [index, a] : handles) {
      const auto it = rank_of.find({role, index});
      const int r = it == rank_of.end() ? 0 : it->second;
      const auto& where = mpi.world()[static_cast<size_t>(r)];
      const auto& role_cfg = role == "student" ? cfg.student
                             : role == "judge" ? cfg.judge
                                               : cfg.tutor;
      actors.inspected.push_back({role, index, r, where.node, on_this_rank(role_cfg, where).device,
                                  role == "learner" ? "learner" : "generator", a});
    }
  for (const auto& [index, a] : found["learner"])
    actors.learners.push_back(caf::actor_cast<learner_actor>(a));
  for (const auto& [index, a] : found["tutor"])
    actors.tutors.push_back(caf::actor_cast<generator_actor>(a));
  // One handle per role for the conversations: the replica itself, or a router over several.
  auto role_handle = [&](const std::string& role) -> generator_actor {
    std::vector<generator_actor> replicas;
    for (const auto& [index, a] : found[role])
      replicas.push_back(caf::actor_cast<generator_actor>(a));
    if (replicas.size() <= 1)
      return replicas.empty() ? generator_actor{} : replicas.front();
    auto router = spawn_replica_router(system, role, replicas, timeout);
    stop.actors.push_back(caf::actor_cast<caf::actor>(router));
    logger->info("{}: {} replicas behind a session-affine, least-loaded router", role,
                 replicas.size());
    return router;
  };
  actors.generators.tutor = role_handle("tutor");
  actors.generators.student = role_handle("student");
  actors.generators.judge = role_handle("judge");
  PEDAGOGY_CHECK(actors.generators.tutor && actors.generators.student && !actors.learners.empty(),
                 "the placement left the job without a tutor, student or learner");

  // The other ranks serve until rank 0 ends the job, with the step loop's exit code (an error
  // is printed here, as the command line would, since this process leaves through finish()).
  int code = static_cast<int>(exit_code::failure);
  try {
    code = run_steps(system, cfg, resolved_toml, run, actors);
  } catch (const input_error& e) {
    std::cerr << describe(e) << '\n';
    code = static_cast<int>(exit_code::bad_input);
  } catch (const std::exception& e) {
    logger->error("{}", e.what());
    std::cerr << "error: " << e.what() << '\n';
  }
  // A signal's code too: the other ranks kept serving for the checkpoint, and leave with it.
  *ending = true;
  mpi.end(code);
  finish(code);
  return code; // not reached
}

} // namespace pedagogy::actors
