// SIGINT/SIGTERM: the first asks to stop, the second exits at once (see signals.hpp).
#include "runtime/signals.hpp"

#include "runtime/logging.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace pedagogy::signals {

namespace {

std::atomic<int> requested{0};
std::atomic<int> received{0}; // real signals, not request_stop()
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free flag");

void say(const char* text) noexcept {
  // write(2) is async-signal-safe; its result cannot be acted on here.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, text, std::strlen(text));
}

void on_signal(int signal) {
  received.fetch_add(1);
  int expected = 0;
  if (requested.compare_exchange_strong(expected, signal)) {
    say("\npedagogy: stopping after the work in flight (saving what is done); "
        "send the signal again to exit at once\n");
    return;
  }
  say("\npedagogy: second signal, exiting now\n");
  ::_exit(exit_code_for(signal));
}

} // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

int stop_requested() noexcept {
  return requested.load(std::memory_order_relaxed);
}

int signals_received() noexcept {
  return received.load(std::memory_order_relaxed);
}

void request_stop(int signal) noexcept {
  int expected = 0;
  requested.compare_exchange_strong(expected, signal);
}

void clear_stop_request() noexcept {
  requested.store(0);
  received.store(0);
}

void exit_now(int code) {
  log::flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

} // namespace pedagogy::signals
