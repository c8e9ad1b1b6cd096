// Waiting on N replies, once, for any actor: one request per target, a callback per answer and
// one when all have answered, or the first failure instead. The trainer waits on its learners
// and tutor replicas this way; the replica router folds its replicas' answers.
#pragma once

#include <caf/all.hpp>

#include <cstddef>
#include <memory>

namespace pedagogy::actors {

// `ask(i)` sends the i-th request (i < n) and returns its response handle; `each(i, answer)` runs
// as answer i arrives, `all()` once every one has; the first failure runs `failed(i, error)`
// and every later answer or failure is ignored. n = 0 runs `all()` at once.
template <class Answer, class Ask, class Each, class All, class Failed>
void ask_all(size_t n, Ask ask, Each each, All all, Failed failed) {
  if (n == 0) {
    all();
    return;
  }
  auto remaining = std::make_shared<size_t>(n);
  auto broken = std::make_shared<bool>(false);
  for (size_t i = 0; i < n; ++i)
    ask(i).then(
      [=](Answer& answer) mutable {
        if (*broken)
          return;
        each(i, answer);
        if (--*remaining == 0)
          all();
      },
      [=](caf::error& e) mutable {
        if (*broken)
          return;
        *broken = true;
        failed(i, e);
      });
}

} // namespace pedagogy::actors
