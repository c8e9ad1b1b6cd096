// Implements the error conventions declared in errors.hpp.
#include "runtime/errors.hpp"

#include "runtime/logging.hpp"

#include <cstdlib>

namespace pedagogy {

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
