// The engine's own records of sessions, sequences and requests (see engine.hpp), shared by its
// scheduler (engine_scheduler.cpp) and its token choice (engine_tokens.cpp).
#pragma once

#include "models/serving/engine.hpp"
#include "models/serving/kv_cache.hpp"
#include "models/serving/sampler.hpp"
#include "models/serving/session_history.hpp"

#include <cstdint>
#include <memory>
#include <vector>

namespace pedagogy::models {

struct engine::session {
  session_history history;
  sequence_kv kv;       // computed prefix of the history; empty when evicted
  bool busy = false;    // a request of it is waiting or running
  bool running = false; // a request of it is running: its cache belongs to that request
  uint64_t last_used = 0;
};

struct engine::sequence {
  request_state* owner = nullptr;
  int64_t index = 0;           // sample index; -1 = the shared prefill of n > 1 samples
  std::vector<int32_t> tokens; // the whole context: prompt, then what was generated
  sequence_kv own;             // the cache when it is not a session's
  sequence_kv* kv = nullptr;
  sampling_rng rng{0};
  completion out;
  size_t forced = 0; // forced-prefix tokens emitted so far
  bool done = false;

  int64_t pending() const {
    return static_cast<int64_t>(tokens.size()) - kv->length();
  }
};

struct engine::request_state {
  uint64_t id = 0;
  generation_request request;
  session* sess = nullptr;
  std::vector<std::unique_ptr<sequence>> sequences;
  int64_t footprint = 0; // most KV blocks it may hold
  bool cancelled = false;
};

} // namespace pedagogy::models
