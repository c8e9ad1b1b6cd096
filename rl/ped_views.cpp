// The ped_learner's view of a ped_teacher dialog (see ped_views.hpp).
#include "rl/ped_views.hpp"

#include <algorithm>

namespace pedagogy::actors {

std::optional<models::session_history> learner_view(const models::session_history& teacher,
                                                    const std::vector<int32_t>& teacher_prompt,
                                                    const std::vector<int32_t>& learner_prompt) {
  const auto& t = teacher.tokens;
  if (t.size() < teacher_prompt.size() ||
      !std::equal(teacher_prompt.begin(), teacher_prompt.end(), t.begin()))
    return std::nullopt;
  const size_t cut = teacher_prompt.size();
  models::session_history out;
  out.tokens = learner_prompt;
  out.sampled.assign(learner_prompt.size(), 0);
  out.logprobs.assign(learner_prompt.size(), 0.0f);
  out.versions.assign(learner_prompt.size(), -1);
  auto rest = [cut](const auto& from, auto& to) {
    if (from.size() >= cut)
      to.insert(to.end(), from.begin() + static_cast<std::ptrdiff_t>(cut), from.end());
  };
  rest(teacher.tokens, out.tokens);
  rest(teacher.sampled, out.sampled);
  rest(teacher.logprobs, out.logprobs);
  rest(teacher.versions, out.versions);
  return out;
}

std::vector<uint8_t> answer_marks(const models::session_history& history,
                                  const std::function<std::string(int32_t)>& text_of,
                                  std::string_view answer) {
  const auto first = answer.find_first_not_of(" \t\n");
  const auto last = answer.find_last_not_of(" \t\n");
  std::vector<uint8_t> marks(history.tokens.size(), 0);
  if (first == std::string_view::npos)
    return marks;
  const std::string_view needle = answer.substr(first, last - first + 1);
  const size_t n = history.tokens.size();
  for (size_t begin = 0; begin < n;) {
    if (history.sampled[begin] == 0) {
      ++begin;
      continue;
    }
    // One run of sampled tokens: its text, and where each token starts in it.
    size_t end = begin;
    std::string text;
    std::vector<size_t> starts;
    for (; end < n && history.sampled[end] != 0; ++end) {
      starts.push_back(text.size());
      text += text_of(history.tokens[end]);
    }
    starts.push_back(text.size());
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
      for (size_t k = 0; k + begin < end; ++k)
        if (starts[k] < at + needle.size() && starts[k + 1] > at)
          marks[begin + k] = 1;
    begin = end;
  }
  return marks;
}

} // namespace pedagogy::actors
