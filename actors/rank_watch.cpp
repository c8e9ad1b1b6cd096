// Rank 0 watching the other ranks (see rank_watch.hpp).
#include "actors/rank_watch.hpp"

#include "runtime/logging.hpp"
#include "runtime/signals.hpp"

#include <fmt/format.h>

#include <memory>

namespace pedagogy::actors {

namespace {

using clock_type = std::chrono::steady_clock;

struct keeper_state {
  std::vector<rank_actor> actors;
  static inline const char* name = "rank_keeper";
};

caf::behavior keeper(caf::stateful_actor<keeper_state>* self, std::vector<rank_actor> actors) {
  self->state.actors = std::move(actors);
  return {
    [](ping_atom) -> int { return signals::stop_requested(); },
    [self](list_atom) { return self->state.actors; },
  };
}

struct rank_seen {
  watched_rank rank;
  clock_type::time_point last_answer;
  bool asking = false;
};

struct watcher_state {
  rank_watch_options options;
  std::vector<rank_seen> ranks;
  bool stop_forwarded = false;
  bool ended = false; // a callback ran: the watcher has said what it had to say
  static inline const char* name = "rank_watcher";
};

using watcher_pointer = caf::stateful_actor<watcher_state>*;

double seconds_since(clock_type::time_point then) {
  return std::chrono::duration<double>(clock_type::now() - then).count();
}

void ping_all(watcher_pointer self) {
  auto& s = self->state;
  const auto patience =
    std::chrono::milliseconds(static_cast<int64_t>(s.options.unresponsive_timeout_s * 1000));
  for (size_t i = 0; i < s.ranks.size(); ++i) {
    auto& r = s.ranks[i];
    if (!r.asking && r.rank.keeper) {
      r.asking = true;
      self->request(r.rank.keeper, patience, ping_atom::value)
        .then(
          [self, i](int signal) {
            auto& seen = self->state.ranks[i];
            seen.asking = false;
            seen.last_answer = clock_type::now();
            if (signal != 0 && !self->state.stop_forwarded) {
              self->state.stop_forwarded = true;
              log::get("cluster")->warn("{} received signal {}: stopping the job after this "
                                        "step's checkpoint, as if rank 0 had",
                                        seen.rank.who, signal);
              signals::request_stop(signal);
            }
          },
          [self, i](caf::error&) { self->state.ranks[i].asking = false; });
    }
    if (!s.ended && !s.options.ending() &&
        seconds_since(r.last_answer) > s.options.unresponsive_timeout_s) {
      s.ended = true;
      s.options.on_silent(fmt::format(
        "{} has not answered for {:.0f} s (cluster.unresponsive_timeout_s): it is stopped, frozen "
        "or cut off; ending the job; the last checkpoint is intact, continue with --resume",
        r.rank.who, seconds_since(r.last_answer)));
    }
  }
}

} // namespace

caf::actor spawn_rank_keeper(caf::actor_system& system, std::vector<rank_actor> actors) {
  return caf::actor_cast<caf::actor>(system.spawn(keeper, std::move(actors)));
}

caf::actor spawn_rank_watcher(caf::actor_system& system, rank_watch_options options) {
  return system.spawn([options = std::move(options)](watcher_pointer self) -> caf::behavior {
    auto& s = self->state;
    s.options = options;
    for (const auto& r : s.options.ranks)
      s.ranks.push_back({r, clock_type::now(), false});
    for (const auto& [address, who] : s.options.remote_actors)
      self->monitor(caf::actor_cast<caf::actor>(address));
    self->set_down_handler([self](caf::down_msg& down) {
      auto& st = self->state;
      if (st.ended || st.options.ending())
        return;
      st.ended = true;
      auto it = st.options.remote_actors.find(down.source);
      st.options.on_gone(fmt::format(
        "{} is gone ({}): ending the job; the last checkpoint is intact, continue with --resume",
        it == st.options.remote_actors.end() ? std::string("a remote actor") : it->second,
        self->system().render(down.reason)));
    });
    self->send(self, poll_atom::value);
    return {
      [self](poll_atom) {
        ping_all(self);
        self->delayed_send(self, self->state.options.heartbeat, poll_atom::value);
      },
      [](caf::exit_msg&) {},
    };
  });
}

} // namespace pedagogy::actors
