// Implements the error conventions declared in errors.hpp.
#include "runtime/errors.hpp"

#include "runtime/logging.hpp"

#include <cstdlib>

namespace pedagogy {

input_error::input_error(std::string where, std::string problem, std::string hint)
  : std::runtime_error(where.empty() ? problem : where + ": " + problem), where_(std::move(where)),
    problem_(std::move(problem)), hint_(std::move(hint)) {}

std::string describe(const input_error& error) {
  std::string text = fmt::format("error: {}", error.what());
  if (!error.hint().empty())
    text += fmt::format("\n  hint: {}", error.hint());
  return text;
}

void check_failed(const char* file, int line, const char* condition, const std::string& message) {
  log::get("check")->critical("{}:{}: invariant '{}' failed: {}", file, line, condition, message);
  log::flush();
  std::abort();
}

void fatal_error(const char* file, int line, const std::string& message, const std::string& hint) {
  if (hint.empty())
    log::get("fatal")->critical("{}:{}: {}", file, line, message);
  else
    log::get("fatal")->critical("{}:{}: {} (hint: {})", file, line, message, hint);
  log::flush();
  std::exit(static_cast<int>(exit_code::failure));
}

} // namespace pedagogy
