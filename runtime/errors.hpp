// The project's three kinds of error (STYLE.md §8), in one place.
//
// 1. A broken invariant is our bug: PEDAGOGY_CHECK logs file:line and aborts.
// 2. A failed external call (I/O, MPI, NCCL, CUDA) is fatal: PEDAGOGY_FATAL logs file:line, the
//    call's own message and a hint, then exits non-zero without hanging.
// 3. Bad input from a person (a config file, an override, a data row, a model directory) is an
//    `input_error` that names where it happened and, when known, what to do; `launch/` catches it,
//    prints it and exits with exit_code::bad_input. Errors between actors use caf::error instead.
#pragma once

#include "runtime/input_error.hpp"

#include <fmt/core.h>

#include <string>

namespace pedagogy {

[[noreturn]] void check_failed(const char* file, int line, const char* condition,
                               const std::string& message);
[[noreturn]] void fatal_error(const char* file, int line, const std::string& message,
                              const std::string& hint);

} // namespace pedagogy

// Aborts with file:line when an invariant of our own code does not hold.
#define PEDAGOGY_CHECK(condition, ...)                                                             \
  do {                                                                                             \
    if (!(condition))                                                                              \
      ::pedagogy::check_failed(__FILE__, __LINE__, #condition, ::fmt::format(__VA_ARGS__));        \
  } while (false)

// Stops the process when an external call failed; `hint` says what the person can do.
#define PEDAGOGY_FATAL(message, hint) ::pedagogy::fatal_error(__FILE__, __LINE__, (message), (hint))
