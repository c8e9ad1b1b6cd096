// Restarting a frozen role's generator (see generator_supervisor.hpp).
#include "actors/generator_supervisor.hpp"

#include "runtime/logging.hpp"

#include <fmt/format.h>

#include <memory>

namespace pedagogy::actors {

namespace {

struct supervisor_state {
  std::string role;
  std::function<generator_actor()> make;
  generator_actor child;
  // The child as an untyped handle, shared with the functor that stops it when the supervisor
  // goes (the state is gone by then).
  std::shared_ptr<caf::actor> current = std::make_shared<caf::actor>();
  int restarts = 0;
  int max_restarts = 3;
  static inline const char* name = "generator_supervisor";
};

using supervisor_pointer = generator_actor::stateful_pointer<supervisor_state>;

void adopt(supervisor_pointer self, generator_actor child) {
  self->state.child = std::move(child);
  *self->state.current = caf::actor_cast<caf::actor>(self->state.child);
  self->monitor(self->state.child);
}

generator_actor::behavior_type supervisor(supervisor_pointer self, std::string role,
                                          generator_actor first,
                                          std::function<generator_actor()> make, int max_restarts) {
  self->state.role = std::move(role);
  self->state.make = std::move(make);
  self->state.max_restarts = max_restarts;
  adopt(self, std::move(first));
  self->set_down_handler([=](caf::down_msg& down) {
    auto& s = self->state;
    if (down.source != s.child.address())
      return;
    if (!down.reason || down.reason == caf::exit_reason::user_shutdown) {
      self->quit(down.reason);
      return;
    }
    auto logger = log::get(s.role);
    if (s.restarts >= s.max_restarts) {
      logger->error("{} generator died ({}) after {} restarts; giving up", s.role,
                    self->system().render(down.reason), s.restarts);
      self->quit(down.reason);
      return;
    }
    ++s.restarts;
    logger->error("{} generator died ({}); restarting it ({} of {}); the requests it held fail "
                  "and their dialogs retry",
                  s.role, self->system().render(down.reason), s.restarts, s.max_restarts);
    try {
      adopt(self, s.make());
    } catch (const std::exception& e) {
      logger->error("restarting the {} generator failed: {}", s.role, e.what());
      self->quit(caf::make_error(caf::sec::runtime_error, std::string(e.what())));
    }
  });
  // Stopping the supervisor stops its generator.
  self->attach_functor([current = self->state.current](const caf::error&) {
    if (*current)
      caf::anon_send_exit(*current, caf::exit_reason::user_shutdown);
  });
  return {
    [=](generate_atom a, generate_request& r) {
      return self->delegate(self->state.child, a, std::move(r));
    },
    [=](close_atom a, std::string& session) {
      return self->delegate(self->state.child, a, std::move(session));
    },
    [=](status_atom a) { return self->delegate(self->state.child, a); },
    [=](weights_atom a, int64_t version) { return self->delegate(self->state.child, a, version); },
    [=](cancel_atom a, std::string& session) { self->send(self->state.child, a, session); },
  };
}

} // namespace

generator_actor spawn_generator_supervisor(caf::actor_system& system, std::string role,
                                           generator_actor first,
                                           std::function<generator_actor()> make,
                                           int max_restarts) {
  // Detached: a restart loads the model again, which must not hold a scheduler thread.
  return system.spawn<caf::detached>(supervisor, std::move(role), std::move(first), std::move(make),
                                     max_restarts);
}

} // namespace pedagogy::actors
