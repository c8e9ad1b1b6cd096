// A full disk for one test: while a file_size_limit is alive, files of this process cannot grow
// past `bytes`, and a write past it fails with EFBIG as one on a full disk fails with ENOSPC.
#pragma once

#include <sys/resource.h>

#include <csignal>
#include <stdexcept>

namespace pedagogy::testing {

struct file_size_limit {
  rlimit before{};
  explicit file_size_limit(rlim_t bytes) {
    std::signal(SIGXFSZ, SIG_IGN); // a failed write, not a killed process
    ::getrlimit(RLIMIT_FSIZE, &before);
    rlimit limit = before;
    limit.rlim_cur = bytes;
    // Thrown, not REQUIRE'd: this header stays free of doctest, which must come after LibTorch.
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0)
      throw std::runtime_error("setrlimit(RLIMIT_FSIZE) failed");
  }
  ~file_size_limit() {
    ::setrlimit(RLIMIT_FSIZE, &before);
  }
  file_size_limit(const file_size_limit&) = delete;
  file_size_limit& operator=(const file_size_limit&) = delete;
};

} // namespace pedagogy::testing
