// A run's dialogs.jsonl while a training step writes it: appended to by the rollouts' schedules
// (on their threads), synced and closed by the trainer. A failed write is kept and raised by the
// trainer at its next sync or close. It also counts the finished dialogs of each rollout, for the
// progress line.
#pragma once

#include "runtime/files.hpp"

#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <string>

namespace pedagogy::actors {

struct dialog_file {
  std::mutex mutex;
  files::line_appender out;
  std::exception_ptr failure;
  std::map<int64_t, int64_t> finished; // by rollout tag

  void count(int64_t tag) {
    std::lock_guard guard{mutex};
    ++finished[tag];
  }
  int64_t finished_of(int64_t tag) {
    std::lock_guard guard{mutex};
    const auto it = finished.find(tag);
    return it == finished.end() ? 0 : it->second;
  }

  void append(const std::string& line) {
    std::lock_guard guard{mutex};
    if (failure || !out.is_open())
      return;
    try {
      out.append(line);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  bool failed() {
    std::lock_guard guard{mutex};
    return failure != nullptr;
  }
  void sync() {
    std::lock_guard guard{mutex};
    if (failure)
      std::rethrow_exception(failure);
    out.sync();
  }
  void close() {
    std::lock_guard guard{mutex};
    if (failure)
      std::rethrow_exception(failure);
    out.close();
  }
};

} // namespace pedagogy::actors
