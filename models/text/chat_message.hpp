// One chat message, the one {role, content} type of the project: what a chat format renders
// (chat_format.hpp), what the classroom's views build (classroom/views.hpp) and what a generator
// is asked to continue (rl/messages.hpp).
#pragma once

#include <string>

namespace pedagogy::models {

struct chat_message {
  std::string role; // "system", "user" or "assistant"
  std::string content;
};

} // namespace pedagogy::models
