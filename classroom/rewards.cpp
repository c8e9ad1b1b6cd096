// Dialog rewards (see rewards.hpp).
#include "classroom/rewards.hpp"

#include "runtime/errors.hpp"

namespace pedagogy::classroom {

namespace {

int64_t count(const std::string& text, std::string_view what) {
  int64_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size()))
    ++n;
  return n;
}

} // namespace

reward_breakdown dialog_reward(const conversation& dialog, const reward_weights& w) {
  PEDAGOGY_CHECK(dialog.current() == phase::done, "reward of a dialog in phase {}",
                 to_string(dialog.current()));
  reward_breakdown r;
  const bool solved = !dialog.grades().empty();
  if (solved) {
    int64_t correct = 0;
    for (bool g : dialog.grades())
      correct += g ? 1 : 0;
    r.solve_rate = static_cast<double>(correct) / static_cast<double>(dialog.grades().size());
    r.end = *r.solve_rate - (dialog.rejected() ? w.rejection_penalty : 0.0);
  } else {
    r.end = -w.rejection_penalty; // hard mode: rejected before any solution
  }

  int64_t tutor_turns = 0;
  int64_t unbalanced = 0;
  int64_t used = 0;
  bool too_long = false;
  for (const auto& m : dialog.messages()) {
    if (!m.from_tutor)
      continue;
    ++tutor_turns;
    const int64_t opens = count(m.content, "<think>");
    const int64_t closes = count(m.content, "</think>");
    if (opens != closes)
      ++unbalanced;
    else if (opens > 0)
      ++used;
    too_long = too_long || m.tokens >= w.max_tokens_per_turn - 1;
  }
  if (solved) {
    r.thinking = -w.thinking_unbalanced_penalty * static_cast<double>(unbalanced);
    if (tutor_turns > 0)
      r.thinking += w.thinking_bonus * static_cast<double>(used) / static_cast<double>(tutor_turns);
    r.end_marker = dialog.ended_by_tutor() ? w.end_marker_bonus : 0.0;
  }
  r.length = too_long ? -w.length_penalty : 0.0;
  r.total = r.end + r.thinking + r.end_marker + r.length;
  return r;
}

} // namespace pedagogy::classroom
