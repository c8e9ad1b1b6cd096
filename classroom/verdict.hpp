// Reading a judge's verdict: the judges are asked for a JSON object
// {"reasoning": "...", "decision": "OK" | "REJECT"}, and models answer it in code fences, amid
// prose, with LaTeX backslashes that are not valid JSON escapes, with Python quotes, with
// trailing commas, or cut off by the token limit. parse_verdict() reads all of those and returns
// nothing only when no decision can be read; what then happens is the caller's policy
// (classroom.unparsed_verdict), never a silent OK as in the reference.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pedagogy::classroom {

enum class decision { ok, reject };

struct verdict {
  decision value = decision::reject;
  std::string reasoning; // may be empty or cut off
};

// The last readable verdict in `text`, or none.
std::optional<verdict> parse_verdict(std::string_view text);

} // namespace pedagogy::classroom
