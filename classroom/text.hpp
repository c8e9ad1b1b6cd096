// Small text helpers shared by the classroom's parsers.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace pedagogy::classroom {

// `s` without leading and trailing ASCII whitespace.
inline std::string trim_ascii(std::string_view s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin])))
    ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1])))
    --end;
  return std::string(s.substr(begin, end - begin));
}

} // namespace pedagogy::classroom
