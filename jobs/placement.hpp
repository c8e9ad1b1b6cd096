// Which rank runs what (DESIGN §7): the placement a config asks for, checked against the world
// size before anything loads, and printed as a table at start.
//
//   rank 0              the trainer and the conversation actors (always), plus whatever the
//                       role tables put there
//   <role>.ranks        one generator replica of that role per listed rank ([] = rank 0)
//   cluster.learner_ranks  one data-parallel learner per listed rank ([] = rank 0); the first is
//                       the root: it writes checkpoints and is the source of the weight broadcast
//
// Pure: no MPI, no actors; a world is described by the rank_info of every rank.
#pragma once

#include "config/schema.hpp"
#include "runtime/ranks.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pedagogy::actors {

struct placement {
  int world_size = 1;
  bool multi_rank = false;   // cluster.mode resolved: false = local (one process)
  std::string channel;       // weight channel resolved: "local", "mpi" or "nccl"
  std::vector<int> learners; // learner ranks; learners[0] is the root
  std::vector<int> tutors;   // one per tutor replica
  std::vector<int> students;
  std::vector<int> judges; // empty when the judges need no generator (rules, judging off)

  int learner_root() const {
    return learners.front();
  }
  // The roles of `rank`, e.g. {"trainer", "tutor", "learner (root)"}.
  std::vector<std::string> roles_of(int rank) const;
  // The weight broadcast's members: the learner root first, then every tutor rank not equal to
  // it (a tutor on the root's rank takes the weights locally).
  std::vector<int> weight_group() const;
};

// Whether the judges need a generator (judging is on and the judges are not rules).
bool needs_judge_generator(const config::config& cfg);

// The placement `cfg` asks for in a world of `world_size` ranks. Throws input_error naming the
// knob when it does not fit: a rank beyond the world, a rank with nothing to do, replicas that
// do not match their ranks, a frozen role on an HTTP endpoint with ranks, a local weight channel
// across ranks, cluster.mode = "local" under a launcher.
placement plan_placement(const config::config& cfg, int world_size, bool has_cuda = false);

// The port rank `rank` publishes its actors on when cluster.port = `base` is not 0: base + rank
// (one port per rank). plan_placement() has checked that every rank's lies within 1024..65535.
uint16_t rank_port(int64_t base, int rank);

// One line per rank: rank, node, device, roles.
std::string placement_table(const placement& p, const std::vector<ranks::rank_info>& world);

} // namespace pedagogy::actors
