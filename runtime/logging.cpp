// Named loggers over shared sinks, with the rank in every line (see logging.hpp).
#include "runtime/logging.hpp"

#include "runtime/input_error.hpp"

#include <spdlog/cfg/helpers.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace pedagogy::log {

namespace {

// The live line (show_live_line): whether one is on the terminal now.
std::mutex live_mutex;
bool live_open = false;

// Standard error in colour, clearing the live line before each log line.
class terminal_sink final : public spdlog::sinks::stderr_color_sink_mt {
public:
  void log(const spdlog::details::log_msg& msg) override {
    clear_live_line();
    spdlog::sinks::stderr_color_sink_mt::log(msg);
  }
};

struct process_sinks {
  std::mutex mutex;
  std::vector<spdlog::sink_ptr> sinks;
  std::string pattern;
  std::mutex failure_mutex;
  std::string failure; // the first failed write, with the file's name
  std::string file;    // the log file, if any
};

process_sinks& state() {
  static process_sinks instance;
  return instance;
}

std::string pattern_for_rank(int rank) {
  return fmt::format("[%Y-%m-%d %H:%M:%S.%e] [r{}] [%n] [%^%l%$] %v", rank);
}

// Called with the state mutex held.
void ensure_default_sinks(process_sinks& s) {
  if (!s.sinks.empty())
    return;
  s.sinks.push_back(std::make_shared<terminal_sink>());
  s.pattern = pattern_for_rank(rank_from_environment());
  for (auto& sink : s.sinks)
    sink->set_pattern(s.pattern);
}

bool valid_level_name(std::string_view name) {
  for (auto known :
       {"trace", "debug", "info", "warn", "warning", "err", "error", "critical", "off"})
    if (name == known)
      return true;
  return false;
}

} // namespace

int rank_from_environment() {
  for (auto var : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* value = std::getenv(var); value != nullptr && *value != '\0') {
      char* end = nullptr;
      long rank = std::strtol(value, &end, 10);
      if (*end == '\0' && rank >= 0)
        return static_cast<int>(rank);
    }
  }
  return 0;
}

void validate_levels(const std::string& spec, const std::string& where) {
  const std::string hint = "use one of trace, debug, info, warn, error, critical, off, "
                           "optionally per logger: \"info,engine=debug\"";
  if (spec.empty())
    throw input_error(where, "empty log level", hint);
  size_t begin = 0;
  while (begin <= spec.size()) {
    size_t end = spec.find(',', begin);
    if (end == std::string::npos)
      end = spec.size();
    std::string_view item(spec.data() + begin, end - begin);
    if (auto eq = item.find('='); eq != std::string_view::npos) {
      if (eq == 0)
        throw input_error(where, fmt::format("log level entry '{}' names no logger", item), hint);
      item.remove_prefix(eq + 1);
    }
    if (!valid_level_name(item))
      throw input_error(where, fmt::format("unknown log level '{}' in \"{}\"", item, spec), hint);
    begin = end + 1;
  }
}

void setup(const options& opts) {
  auto& s = state();
  std::lock_guard guard{s.mutex};
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<terminal_sink>());
  if (!opts.file.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(opts.file));
    } catch (const spdlog::spdlog_ex& e) {
      throw input_error("logging.file",
                        fmt::format("cannot open log file '{}': {}", opts.file, e.what()),
                        "check that the directory exists and is writable");
    }
  }
  std::string levels = opts.levels;
  std::string levels_where = "logging.level";
  const char* env = std::getenv(level_env_var);
  if (!opts.levels_are_final && env != nullptr && *env != '\0') {
    levels = env;
    levels_where = fmt::format("environment variable {}", level_env_var);
  }
  validate_levels(levels, levels_where);

  s.sinks = std::move(sinks);
  s.file = opts.file;
  // A line that cannot be written is remembered (the first one) instead of printed to stderr on
  // every line; the job asks write_failure() where it can stop.
  spdlog::set_error_handler([](const std::string& message) {
    auto& st = state();
    std::lock_guard failure_guard{st.failure_mutex};
    if (st.failure.empty())
      st.failure = message;
  });
  s.pattern = pattern_for_rank(opts.rank >= 0 ? opts.rank : rank_from_environment());
  for (auto& sink : s.sinks)
    sink->set_pattern(s.pattern);
  // Loggers handed out earlier point at the new sinks too.
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& logger) {
    logger->sinks() = s.sinks;
    logger->set_pattern(s.pattern);
  });
  spdlog::cfg::helpers::load_levels(levels);
}

std::shared_ptr<spdlog::logger> get(std::string_view name) {
  auto& s = state();
  std::lock_guard guard{s.mutex};
  std::string key(name);
  if (auto existing = spdlog::get(key))
    return existing;
  ensure_default_sinks(s);
  auto logger = std::make_shared<spdlog::logger>(key, s.sinks.begin(), s.sinks.end());
  logger->set_pattern(s.pattern);
  spdlog::initialize_logger(logger); // applies the levels loaded by setup(), per name
  logger->set_pattern(s.pattern);
  return logger;
}

void show_live_line(const std::string& text) {
  // Cut to the terminal's width: a line that wraps leaves a row behind at every rewrite.
  winsize size{};
  const bool known = ::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 1;
  const auto shown = known && text.size() >= size.ws_col ? text.substr(0, size.ws_col - 1) : text;
  std::lock_guard guard{live_mutex};
  std::fprintf(stderr, "\r%s\x1b[K", shown.c_str());
  std::fflush(stderr);
  live_open = true;
}

void clear_live_line() {
  std::lock_guard guard{live_mutex};
  if (!live_open)
    return;
  std::fputs("\r\x1b[K", stderr);
  std::fflush(stderr);
  live_open = false;
}

void flush() {
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& logger) { logger->flush(); });
}

std::string write_failure() {
  auto& s = state();
  std::lock_guard guard{s.failure_mutex};
  return s.failure;
}

} // namespace pedagogy::log
