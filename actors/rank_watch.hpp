// Rank 0 watching the other ranks of a job: a rank that dies, freezes or is asked to stop.
//
// Every rank but 0 serves a keeper: a small actor on the rank's scheduler, the one actor the
// rank publishes. It lists the rank's actors to rank 0 (`list`), and answers a ping with the
// signal the rank was asked to stop by (0 when none). Pings do not wait behind a generator's
// engine step or a learner's long learn(), which run detached, so a keeper that does not answer
// means the whole process is stopped (SIGSTOP), frozen or out of reach.
//
// The watcher on rank 0 pings every keeper once a second and monitors every remote actor:
//   - a remote actor that is gone (its rank died) stops the job as a signal would, so the last
//     checkpoint stays intact (`on_gone`);
//   - a keeper silent for `unresponsive_timeout_s` ends the job at once (`on_silent`), since a
//     request to a frozen rank would wait for cluster.request_timeout_s;
//   - a keeper that reports a signal (SIGTERM sent to that rank alone) stops the job as if rank 0
//     had received it: the step finishes, a checkpoint is written, every rank leaves.
#pragma once

#include "actors/protocol.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pedagogy::actors {

// A rank's keeper (see above), listing `actors`.
caf::actor spawn_rank_keeper(caf::actor_system& system, std::vector<rank_actor> actors);

struct watched_rank {
  int rank = 0;
  std::string who;   // "rank 2 (node7, student 0)": for messages
  caf::actor keeper; // on that rank
};

struct rank_watch_options {
  std::vector<watched_rank> ranks;
  std::map<caf::actor_addr, std::string> remote_actors; // every actor on another rank, named
  std::chrono::milliseconds heartbeat{1000};            // between pings
  double unresponsive_timeout_s = 60;
  // Called once, from the watcher, with what happened; the job decides how to end.
  std::function<void(const std::string& message)> on_silent;
  std::function<void(const std::string& message)> on_gone;
  // Set once the job ends on purpose: the other ranks leaving is no news then.
  std::function<bool()> ending;
};

caf::actor spawn_rank_watcher(caf::actor_system& system, rank_watch_options options);

} // namespace pedagogy::actors
