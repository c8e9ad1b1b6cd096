// Progress lines (see progress.hpp).
#include "inspect/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <iostream>

namespace pedagogy {

std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0)
    return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  return fmt::format("{}:{:02d}:{:02d}", s / 3600, s / 60 % 60, s % 60);
}

progress_line::progress_line(int64_t total, int64_t already,
                             std::function<void(const std::string&)> print)
  : total_(total), already_(already), printed_(already), tty_(isatty(STDERR_FILENO) != 0),
    print_(std::move(print)), start_(std::chrono::steady_clock::now()) {
  if (!print_)
    print_ = [](const std::string& line) {
      std::cerr << line << '\n';
    };
}

progress_line::~progress_line() {
  finish();
}

void progress_line::update(int64_t done, const std::string& figures) {
  const double elapsed =
    std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t here = done - already_; // done by this run, which the rate is measured on
  const double eta =
    here > 0 ? elapsed / static_cast<double>(here) * static_cast<double>(total_ - done) : -1.0;
  const auto line =
    fmt::format("{} | elapsed {} | ETA {}", figures, duration_text(elapsed), duration_text(eta));
  if (tty_) {
    std::cerr << '\r' << line << "\x1b[K" << std::flush;
    open_ = true;
  } else if (total_ > 0 && (done * 10 / total_ > printed_ * 10 / total_ || done == total_)) {
    print_(line);
    printed_ = done;
  }
}

void progress_line::finish() {
  if (open_)
    std::cerr << '\n';
  open_ = false;
}

} // namespace pedagogy
