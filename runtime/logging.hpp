// Process-wide logging: named spdlog loggers that share one set of sinks and print the MPI rank
// in every line. Logs go to stderr (stdout stays clean for command output such as `config show`)
// and, optionally, to a file.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>

namespace pedagogy::log {

struct options {
  // Level spec: "info", or a default plus per-logger levels, e.g. "info,engine=debug".
  std::string levels = "info";
  // true: `levels` came from the command line and beats PEDAGOGY_LOG_LEVEL.
  bool levels_are_final = false;
  // Also append every line to this file; empty = stderr only.
  std::string file;
  // Rank printed in every line; -1 = read it from the launcher's environment.
  int rank = -1;
};

// (Re)configures sinks, pattern and levels; loggers already handed out follow the new setup.
// Throws input_error for an invalid level spec or a log file that cannot be opened.
void setup(const options& opts);

// The named logger (created on first use), e.g. get("config").
std::shared_ptr<spdlog::logger> get(std::string_view name);

// Throws input_error naming `where` when `spec` is not a valid level spec.
void validate_levels(const std::string& spec, const std::string& where);

// The rank that mpirun/srun gave this process (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID),
// or 0 when it was started by hand.
int rank_from_environment();

// Name of the environment variable that overrides the configured level spec.
inline constexpr const char* level_env_var = "PEDAGOGY_LOG_LEVEL";

void flush();

// A live progress line on the terminal (standard error), rewritten in place: a log line printed
// while it is shown clears it first, so the two never share a row; the next show_live_line()
// brings it back.
void show_live_line(const std::string& text);
void clear_live_line();

// The first failure to write a log line (e.g. the log file's disk is full), or "" when every
// line so far was written. spdlog reports such failures to a handler, not to the caller, so a
// job checks this after flush() at points where it can stop cleanly.
std::string write_failure();

} // namespace pedagogy::log
