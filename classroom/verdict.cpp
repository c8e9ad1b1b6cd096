// Tolerant parsing of judge verdicts (see verdict.hpp).
#include "classroom/verdict.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <regex>
#include <vector>

namespace pedagogy::classroom {

namespace {

using json = nlohmann::json;

std::optional<decision> decision_of(std::string text) {
  text.erase(
    std::remove_if(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); }),
    text.end());
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (text == "OK")
    return decision::ok;
  if (text == "REJECT")
    return decision::reject;
  return std::nullopt;
}

// Backslashes that do not start a JSON escape (LaTeX such as \( or \sqrt) are doubled, so the
// text parses and keeps its meaning; \f, \b, \n... before a letter are LaTeX too (\frac, \beta).
std::string repair_escapes(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out += s[i];
      continue;
    }
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    const char after = i + 2 < s.size() ? s[i + 2] : '\0';
    const bool json_escape = next == '"' || next == '\\' || next == '/' || next == 'u' ||
                             (std::string_view("bfnrt").find(next) != std::string_view::npos &&
                              !std::isalpha(static_cast<unsigned char>(after)));
    if (json_escape) {
      out += s[i];
      out += next;
      ++i;
    } else {
      out += "\\\\";
    }
  }
  return out;
}

std::optional<verdict> from_json(const std::string& candidate) {
  for (const std::string& attempt : {candidate, repair_escapes(candidate)}) {
    json j = json::parse(attempt, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("decision") || !j["decision"].is_string())
      continue;
    auto d = decision_of(j["decision"].get<std::string>());
    if (!d)
      return std::nullopt;
    verdict v{*d, {}};
    if (j.contains("reasoning") && j["reasoning"].is_string())
      v.reasoning = j["reasoning"].get<std::string>();
    return v;
  }
  return std::nullopt;
}

// Every balanced {...} span, strings and escapes respected, in order of their end.
std::vector<std::string> objects_in(std::string_view text) {
  std::vector<std::string> found;
  std::vector<size_t> opens;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      opens.push_back(i);
    } else if (c == '}' && !opens.empty()) {
      found.emplace_back(text.substr(opens.back(), i - opens.back() + 1));
      opens.pop_back();
    }
  }
  return found;
}

} // namespace

std::optional<verdict> parse_verdict(std::string_view text) {
  // 1. The last complete JSON object that carries a decision.
  auto objects = objects_in(text);
  for (auto it = objects.rbegin(); it != objects.rend(); ++it)
    if (it->find("decision") != std::string::npos)
      if (auto v = from_json(*it))
        return v;
  // 2. Otherwise (cut off, trailing comma, single quotes): the last "decision": "..." anywhere.
  static const std::regex field(R"re(["']decision["']\s*:\s*["']\s*([A-Za-z]+)\s*["']?)re");
  std::optional<verdict> last;
  const std::string s(text);
  for (auto it = std::sregex_iterator(s.begin(), s.end(), field); it != std::sregex_iterator();
       ++it) {
    if (auto d = decision_of((*it)[1].str()))
      last = verdict{*d, {}};
    else
      last.reset(); // a decision that is neither OK nor REJECT is no verdict
  }
  if (last) {
    static const std::regex reasoning(R"re(["']reasoning["']\s*:\s*["']((?:[^"'\\]|\\.)*))re");
    std::smatch m;
    if (std::regex_search(s, m, reasoning))
      last->reasoning = m[1].str();
  }
  return last;
}

} // namespace pedagogy::classroom
