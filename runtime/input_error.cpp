// Bad input from a person (see input_error.hpp).
#include "runtime/input_error.hpp"

#include <fmt/format.h>

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

} // namespace pedagogy
