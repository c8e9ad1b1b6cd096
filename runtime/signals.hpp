// Stopping a long job on SIGINT or SIGTERM without losing its work.
//
// The first signal only asks to stop: the job finishes (or abandons) what is in flight, saves,
// flushes and exits with 128 + the signal (130 for Ctrl-C, 143 for SIGTERM). A second signal
// exits at once, for a person who does not want to wait.
#pragma once

namespace pedagogy::signals {

// Installs the handlers for SIGINT and SIGTERM (idempotent).
void install_stop_handlers();

// The signal that asked the job to stop, or 0.
int stop_requested() noexcept;

// How many SIGINT/SIGTERM actually arrived (request_stop() does not count): a job that stopped
// itself (a rank died) can still wait for a person's Ctrl-C.
int signals_received() noexcept;

// Asks to stop as if `signal` had arrived (for tests and for a job's own fatal paths).
void request_stop(int signal) noexcept;

// Forgets an earlier stop request (tests run several jobs in one process).
void clear_stop_request() noexcept;

// Ends a stopped job once everything it keeps is on disk: flushes the logs and exits with `code`
// without waiting for work still in flight (an HTTP request to a hung server, say).
[[noreturn]] void exit_now(int code);

// The conventional exit code of a process stopped by `signal`.
constexpr int exit_code_for(int signal) noexcept {
  return 128 + signal;
}

} // namespace pedagogy::signals
