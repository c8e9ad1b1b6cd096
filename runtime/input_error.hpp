// Bad input from a person (STYLE.md §8, the third kind of error in errors.hpp): an `input_error`
// names where it happened and, when known, what to do; `launch/` catches it, prints it and exits
// with exit_code::bad_input. Apart from errors.hpp so that the logging setup can raise it.
#pragma once

#include <stdexcept>
#include <string>

namespace pedagogy {

// Process exit codes shared by every subcommand.
enum class exit_code : int {
  ok = 0,
  failure = 1,   // the job ran and failed (external call, runtime error)
  bad_input = 2, // a file, flag or override was wrong; nothing was started
};

// Bad input from a person. `where` is "file:line:column", "override 'k=v'", "flag --x", ...
class input_error : public std::runtime_error {
public:
  input_error(std::string where, std::string problem, std::string hint = {});

  const std::string& where() const noexcept {
    return where_;
  }
  const std::string& problem() const noexcept {
    return problem_;
  }
  const std::string& hint() const noexcept {
    return hint_;
  }

private:
  std::string where_;
  std::string problem_;
  std::string hint_;
};

// Renders "error: WHERE: PROBLEM" and, when there is one, "\n  hint: HINT".
std::string describe(const input_error& error);

} // namespace pedagogy
