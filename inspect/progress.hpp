// A long job's progress line (`pedagogy eval`, `pedagogy sft`): on a terminal it is rewritten in
// place; otherwise (a log, a pipe) it is printed about every 10% of the work and at the end. The
// line ends with the elapsed time and an ETA from the rate since this run started.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace pedagogy {

// "1:02:03" (hours:minutes:seconds); negative or non-finite values print as "?".
std::string duration_text(double seconds);

class progress_line {
public:
  // `total` items of work, of which `already` were done before this run (a resumed one); a
  // line that is not on a terminal goes to `print` (default: standard error).
  progress_line(int64_t total, int64_t already = 0,
                std::function<void(const std::string&)> print = {});
  ~progress_line();
  progress_line(const progress_line&) = delete;
  progress_line& operator=(const progress_line&) = delete;

  // `done` items are finished in all (already included); `figures` is the line's own part
  // ("eval a 12/60 | failed 0"). Prints when due.
  void update(int64_t done, const std::string& figures);
  // Ends a line left open on the terminal.
  void finish();

private:
  int64_t total_, already_, printed_;
  bool tty_, open_ = false;
  std::function<void(const std::string&)> print_;
  std::chrono::steady_clock::time_point start_;
};

} // namespace pedagogy
