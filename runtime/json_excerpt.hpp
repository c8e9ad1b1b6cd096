// A short rendering of a JSON value that came from a file, a pipe or a peer, for error messages.
//
// nlohmann's dump() recurses once per level of nesting, so quoting a value nested 100,000 deep
// (`[[[[...]]]]` on stdin, or in a tokenizer.json) overflows the stack while the error about it is
// being written. This renders at most `depth_limit` levels and about `max_chars` characters.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>

namespace pedagogy {

namespace detail {

inline void json_excerpt_into(const nlohmann::json& value, std::string& out, size_t depth,
                              size_t max_chars) {
  constexpr size_t depth_limit = 6;
  if (!value.is_structured()) {
    std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (text.size() > max_chars)
      text = text.substr(0, max_chars) + "...";
    out += text;
    return;
  }
  const bool array = value.is_array();
  out += array ? '[' : '{';
  if (depth >= depth_limit && !value.empty()) {
    out += "...";
  } else {
    bool first = true;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (out.size() >= max_chars) {
        out += ", ...";
        break;
      }
      if (!first)
        out += ", ";
      first = false;
      if (!array)
        out +=
          nlohmann::json(it.key()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
          ": ";
      json_excerpt_into(*it, out, depth + 1, max_chars);
    }
  }
  out += array ? ']' : '}';
}

} // namespace detail

inline std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 120) {
  std::string out;
  detail::json_excerpt_into(value, out, 0, max_chars);
  return out;
}

} // namespace pedagogy
