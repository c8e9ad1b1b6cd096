// Pedagogical RL's dual rendering (../shared/reference/privileged_pedagogical_rl.md §10.2): a
// ped_teacher dialog exists in the ped_teacher's view (its session, with the privileged block in
// its system prompt) and in the ped_learner's view (the deployment rendering). The two differ only
// in the session's first prompt; every later id, sampled or not, is carried over as it was,
// never re-tokenized. Pure: no actors, no tensors.
#pragma once

#include "models/serving/session_history.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pedagogy::actors {

// `teacher` with its first prompt (`teacher_prompt`, which it must start with) replaced by
// `learner_prompt`: the new prompt's tokens are context (not sampled, log-prob 0, version -1).
// nullopt when `teacher` does not start with `teacher_prompt` (the generator rendered the
// messages differently from this process).
std::optional<models::session_history> learner_view(const models::session_history& teacher,
                                                    const std::vector<int32_t>& teacher_prompt,
                                                    const std::vector<int32_t>& learner_prompt);

// 1 on the sampled tokens that spell `answer` (surrounding spaces trimmed): every occurrence
// inside one run of consecutive sampled tokens, the text of each token given by `text_of`.
std::vector<uint8_t> answer_marks(const models::session_history& history,
                                  const std::function<std::string(int32_t)>& text_of,
                                  std::string_view answer);

} // namespace pedagogy::actors
