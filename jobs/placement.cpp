// The placement a config asks for (see placement.hpp).
#include "jobs/placement.hpp"

#include "config/fields.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

namespace pedagogy::actors {

namespace {

using config::backend_kind;

std::vector<int> ranks_of(const config::role_config& role, const std::string& name) {
  if (role.ranks.empty()) {
    if (role.replicas != 1)
      throw input_error(fmt::format("{}.replicas", name),
                        fmt::format("{} replicas but {}.ranks is empty", role.replicas, name),
                        fmt::format("list one rank per replica, e.g. {}.ranks = [1, 2]; two "
                                    "replicas of one role never share a rank",
                                    name));
    return {0};
  }
  if (role.replicas != 1 && role.replicas != static_cast<int64_t>(role.ranks.size()))
    throw input_error(fmt::format("{}.replicas", name),
                      fmt::format("{} replicas but {}.ranks lists {} rank(s)", role.replicas, name,
                                  role.ranks.size()),
                      fmt::format("one replica runs on each rank of {}.ranks; leave {}.replicas "
                                  "out or make it match",
                                  name, name));
  if (role.backend != backend_kind::engine)
    throw input_error(
      fmt::format("{}.ranks", name),
      fmt::format("{} is served by an HTTP endpoint or a rule, not by a rank", name),
      fmt::format("remove {}.ranks; the endpoint is called from rank 0", name));
  return {role.ranks.begin(), role.ranks.end()};
}

void check_in_world(const std::vector<int>& ranks, int world_size, const std::string& knob) {
  for (int r : ranks)
    if (r >= world_size)
      throw input_error(knob,
                        fmt::format("rank {} does not exist: the job has {} rank(s) (0 to {})", r,
                                    world_size, world_size - 1),
                        "start more ranks (mpirun -np N) or place the role on an existing rank");
}

std::string describe_ranks(const std::vector<int>& ranks) {
  return fmt::format("{}", fmt::join(ranks, ", "));
}

} // namespace

bool needs_judge_generator(const config::config& cfg) {
  return cfg.classroom.number_judge_attempts > 0 && !cfg.classroom.judge_rules.empty() &&
         cfg.judge.backend != backend_kind::rule;
}

std::vector<std::string> placement::roles_of(int rank) const {
  std::vector<std::string> out;
  if (rank == 0)
    out.push_back(multi_rank ? "trainer, conversations" : "trainer, conversations (local mode)");
  for (size_t i = 0; i < learners.size(); ++i)
    if (learners[i] == rank)
      out.push_back(i == 0 ? "learner (root)" : "learner");
  auto add = [&](const std::vector<int>& ranks, const char* role) {
    for (size_t i = 0; i < ranks.size(); ++i)
      if (ranks[i] == rank)
        out.push_back(ranks.size() > 1 ? fmt::format("{} {}", role, i) : role);
  };
  add(tutors, "tutor");
  add(students, "student");
  add(judges, "judge");
  return out;
}

std::vector<int> placement::weight_group() const {
  std::vector<int> group{learner_root()};
  for (int t : tutors)
    if (std::find(group.begin(), group.end(), t) == group.end())
      group.push_back(t);
  return group;
}

namespace {

// Local mode: every actor in this process, whatever the role tables say about ranks.
placement plan_local(const config::config& cfg, placement p) {
  const auto& cluster = cfg.cluster;
  for (const auto* name : {"tutor", "student", "judge"}) {
    const auto& role = std::string(name) == "tutor"     ? cfg.tutor
                       : std::string(name) == "student" ? cfg.student
                                                        : cfg.judge;
    if (!role.ranks.empty() || role.replicas != 1)
      throw input_error(fmt::format("{}.ranks", name),
                        "replicas on ranks need several processes (cluster.mode = \"mpi\")",
                        fmt::format("remove {}.ranks and {}.replicas, or start the job with "
                                    "mpirun and cluster.mode = \"mpi\"",
                                    name, name));
  }
  if (!cluster.learner_ranks.empty() && cluster.learner_ranks != std::vector<int64_t>{0})
    throw input_error("cluster.learner_ranks",
                      "data-parallel learners need several processes (cluster.mode = \"mpi\")",
                      "remove cluster.learner_ranks, or start the job with mpirun");
  if (cluster.weight_channel == config::weight_channel_kind::mpi ||
      cluster.weight_channel == config::weight_channel_kind::nccl)
    throw input_error("cluster.weight_channel",
                      "\"mpi\" and \"nccl\" broadcast between ranks, and this is one process",
                      "use \"local\" (or \"auto\"), or start the job with mpirun and "
                      "cluster.mode = \"mpi\"");
  p.learners = {0};
  p.tutors = {0};
  p.students = {0};
  if (needs_judge_generator(cfg))
    p.judges = {0};
  p.channel = "local";
  return p;
}

// The ranks of every role, checked against the world.
void place_roles(const config::config& cfg, int world_size, placement& p) {
  const auto& cluster = cfg.cluster;
  if (cluster.port != 0) {
    // A port past 65535 wrapped around (65534 gave ports 2 and 6); below 1024 needs root.
    const int64_t last = cluster.port + world_size - 1;
    if (cluster.port < 1024 || last > 65535)
      throw input_error(
        "cluster.port",
        fmt::format("{} ranks publish their actors on ports {}..{}, outside "
                    "1024..65535",
                    world_size, cluster.port, last),
        fmt::format("use 0 (any free port) or a port from 1024 to {}", 65536 - world_size));
  }
  if (cfg.ped.mode != config::ped_mode::off)
    throw input_error("ped.mode",
                      fmt::format("\"{}\" runs in one process for now: the ped_teacher's "
                                  "generator and learner have no place on other ranks yet",
                                  config::to_string(cfg.ped.mode)),
                      "use cluster.mode = \"local\" (one process, one device), or ped.mode = "
                      "\"off\" on several ranks");
  p.learners = cluster.learner_ranks.empty()
                 ? std::vector<int>{0}
                 : std::vector<int>(cluster.learner_ranks.begin(), cluster.learner_ranks.end());
  check_in_world(p.learners, world_size, "cluster.learner_ranks");
  if (cfg.tutor.backend != backend_kind::engine)
    throw input_error("tutor.backend", "the trained tutor must run on our engine",
                      "set tutor.backend = \"engine\"; an HTTP endpoint cannot take new weights");
  p.tutors = ranks_of(cfg.tutor, "tutor");
  check_in_world(p.tutors, world_size, "tutor.ranks");
  p.students = ranks_of(cfg.student, "student");
  check_in_world(p.students, world_size, "student.ranks");
  if (needs_judge_generator(cfg)) {
    p.judges = ranks_of(cfg.judge, "judge");
    check_in_world(p.judges, world_size, "judge.ranks");
  } else if (!cfg.judge.ranks.empty()) {
    throw input_error("judge.ranks",
                      "the judges are rules (or judging is off): no judge model runs",
                      "remove judge.ranks");
  }
}

// Every rank has something to do.
void refuse_idle_ranks(const placement& p, int world_size) {
  std::set<int> busy{0};
  for (const auto* list : {&p.learners, &p.tutors, &p.students, &p.judges})
    busy.insert(list->begin(), list->end());
  for (int r = 0; r < world_size; ++r)
    if (busy.count(r) == 0)
      throw input_error("cluster.learner_ranks",
                        fmt::format("rank {} of {} has nothing to do (learners on {}, tutor on {}, "
                                    "student on {}, judge on {})",
                                    r, world_size, describe_ranks(p.learners),
                                    describe_ranks(p.tutors), describe_ranks(p.students),
                                    p.judges.empty() ? "none" : describe_ranks(p.judges)),
                        "place a role on it (cluster.learner_ranks, <role>.ranks) or start "
                        "fewer ranks");
}

// The weight channel the config asks for, possible with this placement.
std::string channel_of(const config::config& cfg, const placement& p, bool has_cuda) {
  switch (cfg.cluster.weight_channel) {
    case config::weight_channel_kind::auto_:
      // mpi until the nccl channel has been measured on GPUs (it stages GPU tensors through host
      // memory); cluster.weight_channel = "nccl" asks for NCCL.
      return "mpi";
    case config::weight_channel_kind::local: {
      const auto group = p.weight_group();
      if (group.size() > 1)
        throw input_error("cluster.weight_channel",
                          fmt::format("\"local\" copies inside one process, but tutor replicas "
                                      "run on rank(s) {} and the learner root on rank {}",
                                      describe_ranks(p.tutors), p.learner_root()),
                          "use \"mpi\" (CPU) or \"nccl\" (GPU), or \"auto\"");
      return "local";
    }
    case config::weight_channel_kind::mpi:
      return "mpi";
    case config::weight_channel_kind::nccl:
      if (!has_cuda)
        throw input_error("cluster.weight_channel",
                          "\"nccl\" needs a build with CUDA and NCCL and a GPU on every rank",
                          "use \"mpi\" (or \"auto\") on CPU");
      return "nccl";
  }
  return "mpi";
}

} // namespace

placement plan_placement(const config::config& cfg, int world_size, bool has_cuda) {
  const auto& cluster = cfg.cluster;
  placement p;
  p.world_size = world_size;
  switch (cluster.mode) {
    case config::cluster_mode::auto_:
      p.multi_rank = world_size > 1;
      break;
    case config::cluster_mode::local:
      if (world_size > 1)
        throw input_error(
          "cluster.mode",
          fmt::format("\"local\" runs one process, but the launcher started {}", world_size),
          "set cluster.mode = \"mpi\" (or \"auto\"), or start one process");
      break;
    case config::cluster_mode::mpi:
      p.multi_rank = true;
      break;
  }

  if (!p.multi_rank)
    return plan_local(cfg, p);
  place_roles(cfg, world_size, p);
  refuse_idle_ranks(p, world_size);
  p.channel = channel_of(cfg, p, has_cuda);
  return p;
}

uint16_t rank_port(int64_t base, int rank) {
  const int64_t port = base + rank;
  PEDAGOGY_CHECK(port >= 1024 && port <= 65535, "port {} escaped plan_placement's check", port);
  return static_cast<uint16_t>(port);
}

std::string placement_table(const placement& p, const std::vector<ranks::rank_info>& world) {
  std::string out = fmt::format("{:>5}  {:<20}  {:<8}  {}\n", "rank", "node", "device", "roles");
  for (int r = 0; r < p.world_size; ++r) {
    const auto* info =
      static_cast<size_t>(r) < world.size() ? &world[static_cast<size_t>(r)] : nullptr;
    out += fmt::format("{:>5}  {:<20}  {:<8}  {}\n", r, info ? info->node : "?",
                       info ? info->device : "?", fmt::join(p.roles_of(r), ", "));
  }
  out +=
    fmt::format("weights: {} channel from the learner root (rank {})", p.channel, p.learner_root());
  return out;
}

} // namespace pedagogy::actors
