// The inspector (DESIGN §3): one actor on rank 0 that watches every actor of the job and serves
// what it sees over HTTP. Every heartbeat it asks each watched actor for its status (a learner
// busy in a long learn() also reports unasked between micro-batches); the trainer reports its
// phase and each finished step's metrics; conversations report each turn, and finished dialogs
// arrive from the rollout. The picture itself is a value (inspection.hpp); the HTTP side
// (inspection_server) asks the inspector for a page and never touches its state.
#pragma once

#include "actors/protocol.hpp"
#include "config/schema.hpp"
#include "inspect/http_server.hpp"
#include "inspect/inspection.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace pedagogy::actors {

struct inspector_setup {
  inspection_options options;
  std::chrono::milliseconds heartbeat{1000}; // how often every watched actor is asked
};

inspector_actor spawn_inspector(caf::actor_system& system, const inspector_setup& setup);

// The inspector's pages over HTTP: "/" (the page, from the binary), "/status", "/metrics",
// "/dialogs", "/steps". Each request asks the inspector with a deadline; a slow answer is a 503.
class inspection_server {
public:
  // Throws input_error for a bad inspect.host/port/token (see http::server).
  inspection_server(caf::actor_system& system, inspector_actor inspector,
                    const http::server_options& options);
  int port() const {
    return server_->port();
  }
  std::string url() const {
    return server_->url();
  }

private:
  std::unique_ptr<http::server> server_;
};

// The token requests must carry: PEDAGOGY_INSPECT_TOKEN, else inspect.token ("" = none).
std::string inspect_token(const config::inspect_config& config);

// Refuses a non-loopback inspect.host without a token (input_error), so that a job says so
// before it loads anything.
void check_inspect_config(const config::inspect_config& config);

// A training job's inspector on rank 0 with its HTTP server, from [inspect]: it watches `watched`
// from the start, is kept for the run, and for inspect.linger_s after it (linger()).
class inspection_host {
public:
  // Throws input_error for a bad inspect.host, port or token, before anything is watched.
  inspection_host(caf::actor_system& system, const config::inspect_config& config,
                  const std::string& run_dir, const std::vector<inspected_actor>& watched);
  ~inspection_host(); // the server stops first, then the inspector
  inspection_host(const inspection_host&) = delete;
  inspection_host& operator=(const inspection_host&) = delete;

  const inspector_actor& inspector() const {
    return inspector_;
  }
  // Keeps serving inspect.linger_s after the run (-1: until a signal), saying so.
  void linger() const;

private:
  config::inspect_config config_;
  inspector_actor inspector_;
  std::unique_ptr<inspection_server> server_;
};

} // namespace pedagogy::actors
