// The inspector actor and its HTTP server (see inspector_actor.hpp).
#include "actors/inspector_actor.hpp"

#include "inspect/page.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"
#include "runtime/signals.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <thread>

namespace pedagogy::actors {

namespace {

struct watched {
  caf::actor handle;
  std::string kind;    // "generator" or "learner": which status it answers
  bool asking = false; // a status request is out: the next heartbeat does not pile another on
};

struct inspector_state {
  std::unique_ptr<inspection> picture;
  std::vector<watched> rows;
  std::map<caf::actor_addr, size_t> row_of;
  std::chrono::milliseconds heartbeat{1000};
  caf::duration patience{std::chrono::seconds(10)};
  static inline const char* name = "inspector";
};

using inspector_pointer = inspector_actor::stateful_pointer<inspector_state>;

void poll(inspector_pointer self) {
  auto& s = self->state;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    auto& w = s.rows[i];
    if (w.asking || !w.handle)
      continue;
    w.asking = true;
    auto done = [self, i] {
      self->state.rows[i].asking = false;
    };
    // A failed or late answer leaves the row as it was: it turns unresponsive on its own.
    auto failed = [done](caf::error&) {
      done();
    };
    if (w.kind == "learner")
      self->request(w.handle, s.patience, status_atom::value)
        .then(
          [self, i, done](learner_status& st) {
            done();
            self->state.picture->on_learner(i, st, inspection::clock::now());
          },
          failed);
    else
      self->request(w.handle, s.patience, status_atom::value)
        .then(
          [self, i, done](generator_status& st) {
            done();
            self->state.picture->on_generator(i, st, inspection::clock::now());
          },
          failed);
  }
}

inspector_actor::behavior_type inspector(inspector_pointer self, inspector_setup setup) {
  auto& state = self->state;
  state.picture = std::make_unique<inspection>(setup.options, inspection::clock::now());
  state.heartbeat = setup.heartbeat;
  // Long enough for a detached actor finishing an engine step or a checkpoint.
  state.patience = caf::duration{std::max<std::chrono::milliseconds>(
    std::chrono::milliseconds(static_cast<int64_t>(setup.options.unresponsive_after_s * 2000)),
    std::chrono::seconds(2))};
  self->set_down_handler([self](caf::down_msg& down) {
    auto& s = self->state;
    if (auto it = s.row_of.find(down.source); it != s.row_of.end())
      s.picture->on_lost(it->second, self->system().render(down.reason));
  });
  self->send(self, poll_atom::value);
  return {
    [self](join_atom, inspected_actor who) {
      auto& s = self->state;
      const size_t row = s.picture->join(who, inspection::clock::now());
      if (who.handle) {
        self->monitor(who.handle);
        s.row_of[who.handle.address()] = row;
      }
      s.rows.push_back({std::move(who.handle), who.kind, false});
    },
    [self](status_atom, const learner_status& st) {
      auto& s = self->state;
      if (auto sender = self->current_sender())
        if (auto it = s.row_of.find(caf::actor_cast<caf::actor_addr>(sender)); it != s.row_of.end())
          s.picture->on_learner(it->second, st, inspection::clock::now());
    },
    [self](const trainer_status& st) {
      self->state.picture->on_trainer(st, inspection::clock::now());
    },
    [self](metrics_atom, const std::string& line) { self->state.picture->on_step(line); },
    [self](const dialog_progress& progress) {
      self->state.picture->on_dialog(progress, inspection::clock::now());
    },
    [self](const classroom::dialog_record& record) { self->state.picture->on_finished(record); },
    [self](render_atom, const std::string& path) -> caf::result<std::string> {
      const auto& p = *self->state.picture;
      const auto now = inspection::clock::now();
      // Model output need not be valid UTF-8: bad bytes become U+FFFD rather than an error.
      auto text = [](const nlohmann::json& j) {
        return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      };
      if (path == "/status")
        return text(p.status(now));
      if (path == "/metrics")
        return p.prometheus(now);
      if (path == "/dialogs")
        return text(p.dialogs());
      if (path == "/steps")
        return text(p.steps());
      if (path == "/initial") // the page's first paint
        return text({{"status", p.status(now)}, {"steps", p.steps()}, {"dialogs", p.dialogs()}});
      return caf::make_error(caf::sec::invalid_argument, "no such page: " + path);
    },
    [self](poll_atom) {
      poll(self);
      self->delayed_send(self, self->state.heartbeat, poll_atom::value);
    },
  };
}

} // namespace

inspector_actor spawn_inspector(caf::actor_system& system, const inspector_setup& setup) {
  return system.spawn(inspector, setup);
}

inspection_server::inspection_server(caf::actor_system& system, inspector_actor inspector,
                                     const http::server_options& options) {
  auto handle = [&system, inspector](const std::string& path,
                                     const http::query&) -> http::response {
    if (path == "/" || path == "/index.html") {
      // The page carries the current picture, so its first paint shows it. Every '<' is escaped
      // (only strings hold one), so no text in a dialog can end the script element holding it.
      std::string data = "{}";
      caf::scoped_actor self{system};
      self->request(inspector, std::chrono::seconds(5), render_atom::value, std::string("/initial"))
        .receive([&](std::string& body) { data = std::move(body); }, [](caf::error&) {});
      for (size_t at = data.find('<'); at != std::string::npos; at = data.find('<', at + 6))
        data.replace(at, 1, "\\u003c");
      auto page = inspection_page();
      const std::string marker = "@INITIAL_DATA@";
      if (const auto at = page.find(marker); at != std::string::npos)
        page.replace(at, marker.size(), data);
      return {200, "text/html; charset=utf-8", page};
    }
    if (path != "/status" && path != "/metrics" && path != "/dialogs" && path != "/steps")
      return {404, "text/plain; charset=utf-8",
              "no such page; try /, /status, /metrics, /dialogs or /steps\n"};
    http::response out{503, "text/plain; charset=utf-8", "the inspector did not answer in time\n"};
    caf::scoped_actor self{system};
    self->request(inspector, std::chrono::seconds(5), render_atom::value, path)
      .receive(
        [&](std::string& body) {
          out.status = 200;
          out.body = std::move(body);
          out.content_type =
            path == "/metrics" ? "text/plain; version=0.0.4; charset=utf-8" : "application/json";
        },
        [&](caf::error& e) { out.body = system.render(e) + "\n"; });
    return out;
  };
  server_ = std::make_unique<http::server>(options, handle);
}

std::string inspect_token(const config::inspect_config& config) {
  if (const char* token = std::getenv("PEDAGOGY_INSPECT_TOKEN"); token != nullptr && *token)
    return token;
  return config.token;
}

void check_inspect_config(const config::inspect_config& config) {
  if (!config.enabled)
    return;
  http::server_options options;
  options.host = config.host;
  options.token = inspect_token(config);
  http::check_exposure(options);
}

inspection_host::inspection_host(caf::actor_system& system, const config::inspect_config& config,
                                 const std::string& run_dir,
                                 const std::vector<inspected_actor>& watched)
  : config_(config) {
  http::server_options options;
  options.host = config.host;
  options.port = static_cast<int>(config.port);
  options.token = inspect_token(config);
  inspector_setup setup;
  setup.heartbeat = std::chrono::milliseconds(config.heartbeat_ms);
  setup.options.unresponsive_after_s = config.unresponsive_s;
  setup.options.finished_dialogs = static_cast<size_t>(config.keep_dialogs);
  setup.options.run_dir = run_dir;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  setup.options.node = host;
  inspector_ = spawn_inspector(system, setup);
  try {
    server_ = std::make_unique<inspection_server>(system, inspector_, options);
  } catch (...) {
    caf::anon_send_exit(inspector_, caf::exit_reason::user_shutdown);
    throw;
  }
  for (const auto& who : watched)
    caf::anon_send(inspector_, join_atom::value, who);
  // Bound to every address: say this machine's name, which is what a person would type.
  const bool any = config.host == "0.0.0.0" || config.host == "::";
  log::get("inspector")
    ->info("live inspection at {}/ ({} actors watched{}); in a terminal: pedagogy inspect {}:{}",
           server_->url(), watched.size(), options.token.empty() ? "" : ", token required",
           any ? setup.options.node : config.host, server_->port());
}

inspection_host::~inspection_host() {
  server_.reset();
  caf::anon_send_exit(inspector_, caf::exit_reason::user_shutdown);
}

void inspection_host::linger() const {
  // A person who sent a signal wants out; a job that stopped itself (a rank died) or failed
  // still lingers, so that what happened can be seen.
  if (config_.linger_s == 0 || signals::signals_received() != 0)
    return;
  auto logger = log::get("inspector");
  // A warning, not news: a finished run that does not exit looks like a hang otherwise.
  if (config_.linger_s < 0)
    logger->warn("the run has ended; waiting for Ctrl-C (or SIGTERM), as inspect.linger_s = -1, "
                 "while serving {}/",
                 server_->url());
  else
    logger->warn("the run has ended; serving {}/ for {} s more, as inspect.linger_s = {} (Ctrl-C "
                 "ends it sooner)",
                 server_->url(), config_.linger_s, config_.linger_s);
  const bool forever = config_.linger_s < 0;
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(forever ? 0 : config_.linger_s));
  // Polls the stop flag a signal handler sets (no other way to wait on it).
  while (signals::signals_received() == 0 && (forever || std::chrono::steady_clock::now() < until))
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

} // namespace pedagogy::actors
