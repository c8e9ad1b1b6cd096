// Answer extraction, normalisation and comparison (see answer_check.hpp).
#include "classroom/answer_check.hpp"

#include "classroom/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numbers>
#include <regex>
#include <vector>

namespace pedagogy::classroom {

namespace {

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

// Index of the '}' closing the '{' at `open`, or npos.
size_t closing_brace(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '{')
      ++depth;
    else if (s[i] == '}' && --depth == 0)
      return i;
  }
  return std::string::npos;
}

// Index of the ')' closing the '(' at 0, or npos.
size_t closing_paren(std::string_view s) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '(')
      ++depth;
    else if (s[i] == ')' && --depth == 0)
      return i;
  }
  return std::string::npos;
}

// \command{content} -> " content", for every occurrence (a \text{} group is its own word).
void unwrap(std::string& s, std::string_view command) {
  const std::string open = std::string(command) + "{";
  for (size_t at = s.find(open); at != std::string::npos; at = s.find(open, at)) {
    const size_t close = closing_brace(s, at + command.size());
    if (close == std::string::npos)
      return;
    s = s.substr(0, at) + " " + s.substr(at + open.size(), close - at - open.size()) +
        s.substr(close + 1);
  }
}

// Splits at commas that are not inside braces, brackets or parentheses.
std::vector<std::string> split_top_level(std::string_view s) {
  std::vector<std::string> parts(1);
  int depth = 0;
  for (char c : s) {
    if (c == '{' || c == '(' || c == '[')
      ++depth;
    else if (c == '}' || c == ')' || c == ']')
      --depth;
    if (c == ',' && depth == 0)
      parts.emplace_back();
    else
      parts.back() += c;
  }
  return parts;
}

bool close_to(double a, double b) {
  return std::abs(a - b) <= 1e-9 * std::max({1.0, std::abs(a), std::abs(b)});
}

// A numeric value of a normalised answer, or none.
std::optional<double> parse_number(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  if (s[0] == '-' || s[0] == '+') {
    auto rest = parse_number(s.substr(1));
    if (!rest)
      return std::nullopt;
    return s[0] == '-' ? -*rest : *rest;
  }
  static const std::regex decimal(R"(^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$)", std::regex::icase);
  if (std::regex_match(s, decimal))
    return std::stod(s);
  // a \times 10^{k}, a \cdot 10^k, or a bare power of ten 10^{k}.
  static const std::regex scientific(R"(^(?:(.+?)(\\times|\\cdot|\*))?10\^\{?([+-]?\d+)\}?$)");
  std::smatch m;
  if (std::regex_match(s, m, scientific)) {
    auto mantissa = m[1].matched ? parse_number(m[1].str()) : std::optional<double>(1.0);
    if (mantissa)
      return *mantissa * std::pow(10.0, std::stod(m[3].str()));
  }
  if (s == "\\pi")
    return std::numbers::pi;
  // \frac{a}{b}, or \fracab with single-character arguments, optionally after a whole number.
  if (auto at = s.find("\\frac"); at != std::string::npos) {
    std::optional<double> whole = 0.0;
    if (at > 0)
      whole = parse_number(s.substr(0, at));
    std::string num, den;
    size_t i = at + 5;
    auto argument = [&](std::string& out) {
      if (i >= s.size())
        return false;
      if (s[i] == '{') {
        size_t close = closing_brace(s, i);
        if (close == std::string::npos)
          return false;
        out = s.substr(i + 1, close - i - 1);
        i = close + 1;
      } else {
        out = s.substr(i, 1);
        ++i;
      }
      return true;
    };
    if (whole && argument(num) && argument(den) && i == s.size()) {
      auto n = parse_number(num);
      auto d = parse_number(den);
      if (n && d && *d != 0)
        return *whole + *n / *d; // a mixed number when there is a whole part
    }
    return std::nullopt;
  }
  if (auto slash = s.find('/');
      slash != std::string::npos && s.find('/', slash + 1) == std::string::npos) {
    auto n = parse_number(s.substr(0, slash));
    auto d = parse_number(s.substr(slash + 1));
    if (n && d && *d != 0)
      return *n / *d;
    return std::nullopt;
  }
  // c\sqrt{x}, c\sqrtx, c\pi: a coefficient times a root or pi.
  for (std::string_view symbol : {"\\sqrt", "\\pi"}) {
    auto at = s.find(symbol);
    if (at == std::string::npos)
      continue;
    std::optional<double> coefficient =
      at == 0 ? std::optional<double>(1.0) : parse_number(s.substr(0, at));
    if (!coefficient)
      return std::nullopt;
    std::string rest = s.substr(at + symbol.size());
    if (symbol == "\\pi")
      return rest.empty() ? std::optional<double>(*coefficient * std::numbers::pi) : std::nullopt;
    if (!rest.empty() && rest.front() == '{' && closing_brace(rest, 0) == rest.size() - 1)
      rest = rest.substr(1, rest.size() - 2);
    auto radicand = parse_number(rest);
    if (radicand && *radicand >= 0)
      return *coefficient * std::sqrt(*radicand);
    return std::nullopt;
  }
  return std::nullopt;
}

struct value {
  enum class kind { number, list, text } type = kind::text;
  double number = 0;
  bool percent = false;
  std::vector<value> items;
  std::string open, close; // brackets of a list; "" for a bare list
  bool unordered = false;  // sets and bare lists
  std::string text;
};

value parse_value(std::string s) {
  value v;
  if (!s.empty() && s.back() == '%') {
    v.percent = true;
    s.pop_back();
  }
  auto list_of = [&](std::string inner, std::string open, std::string close, bool unordered) {
    v.type = value::kind::list;
    v.open = std::move(open);
    v.close = std::move(close);
    v.unordered = unordered;
    for (auto& part : split_top_level(inner))
      v.items.push_back(parse_value(part));
    return v;
  };
  if (s.size() >= 4 && s.starts_with("\\{") && s.ends_with("\\}"))
    return list_of(s.substr(2, s.size() - 4), "{", "}", true);
  if (s.size() >= 2 && (s.front() == '(' || s.front() == '[') &&
      (s.back() == ')' || s.back() == ']') && split_top_level(s.substr(1, s.size() - 2)).size() > 1)
    return list_of(s.substr(1, s.size() - 2), std::string(1, s.front()), std::string(1, s.back()),
                   false);
  if (split_top_level(s).size() > 1)
    return list_of(s, "", "", true);
  if (auto number = parse_number(s)) {
    v.type = value::kind::number;
    v.number = *number;
    return v;
  }
  v.text = lower(s);
  return v;
}

bool equal(const value& a, const value& b) {
  if (a.type == value::kind::number && b.type == value::kind::number) {
    if (close_to(a.number, b.number))
      return true;
    // "50%" and "0.5" are the same answer; "50" and "50%" match above.
    return (a.percent && close_to(a.number / 100, b.number)) ||
           (b.percent && close_to(a.number, b.number / 100));
  }
  if (a.type == value::kind::list && b.type == value::kind::list) {
    if (a.open != b.open || a.close != b.close || a.items.size() != b.items.size())
      return false;
    if (!a.unordered) {
      for (size_t i = 0; i < a.items.size(); ++i)
        if (!equal(a.items[i], b.items[i]))
          return false;
      return true;
    }
    std::vector<bool> used(b.items.size(), false);
    for (const auto& item : a.items) {
      bool found = false;
      for (size_t j = 0; j < b.items.size() && !found; ++j)
        if (!used[j] && equal(item, b.items[j]))
          used[j] = found = true;
      if (!found)
        return false;
    }
    return true;
  }
  return a.type == value::kind::text && b.type == value::kind::text && a.text == b.text;
}

} // namespace

std::optional<std::string> last_boxed(std::string_view text) {
  size_t best = std::string_view::npos;
  size_t length = 0;
  for (std::string_view command : {"\\boxed{", "\\fbox{"}) {
    size_t at = text.rfind(command);
    if (at != std::string_view::npos && (best == std::string_view::npos || at > best)) {
      best = at;
      length = command.size();
    }
  }
  if (best == std::string_view::npos)
    return std::nullopt;
  const size_t close = closing_brace(text, best + length - 1);
  if (close == std::string_view::npos || close == best + length)
    return std::nullopt;
  return std::string(text.substr(best + length, close - best - length));
}

std::string normalize_answer(std::string_view answer) {
  std::string s = trim_ascii(answer);
  // Unicode spellings first.
  replace_all(s, "\u2212", "-"); // minus sign
  replace_all(s, "\u00D7", "\\times");
  replace_all(s, "\u22C5", "\\cdot");
  replace_all(s, "\u00B7", "\\cdot");
  replace_all(s, "\u03C0", "\\pi");
  replace_all(s, "\u221A", "\\sqrt");
  replace_all(s, "\u00B0", "");
  // Wrappers that carry no value.
  for (std::string_view command :
       {"\\text", "\\textbf", "\\mathrm", "\\mathbf", "\\mbox", "\\operatorname"})
    unwrap(s, command);
  for (std::string_view noise :
       {"\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "~", "\\$", "$",
        "^\\circ", "^{\\circ}", "\\circ", "\\degree"})
    replace_all(s, noise, "");
  if (s.starts_with("\\(") && s.ends_with("\\)"))
    s = s.substr(2, s.size() - 4);
  if (s.starts_with("\\[") && s.ends_with("\\]"))
    s = s.substr(2, s.size() - 4);
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  replace_all(s, "\\%", "%");
  s = trim_ascii(s);
  // "x = 7" -> "7" (one simple assignment only).
  static const std::regex assignment(R"(^[a-zA-Z][a-zA-Z0-9_]*\s*=\s*([^=]+)$)");
  std::smatch m;
  if (std::regex_match(s, m, assignment))
    s = trim_ascii(m[1].str());
  // "5 cm", "12 apples", "7 dollars" -> the number.
  static const std::regex units(R"(^(.*\d%?)\s+[a-zA-Z][a-zA-Z. ]*$)");
  if (std::regex_match(s, m, units))
    s = m[1].str();
  s.erase(std::remove_if(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); }),
          s.end());
  // x^{2} -> x^2, a_{1} -> a_1.
  static const std::regex single_brace(R"(([\^_])\{(.)\})");
  s = std::regex_replace(s, single_brace, "$1$2");
  // "(5)" -> "5", but "(1,2)" stays a tuple.
  while (s.size() >= 2 && s.front() == '(' && closing_paren(s) == s.size() - 1 &&
         split_top_level(s.substr(1, s.size() - 2)).size() == 1)
    s = s.substr(1, s.size() - 2);
  // 1,000,000 -> 1000000.
  static const std::regex thousands(R"(^[+-]?\d{1,3}(,\d{3})+(\.\d+)?%?$)");
  if (std::regex_match(s, thousands))
    s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  return s;
}

bool same_answer(std::string_view reference, std::string_view candidate, answer_mode mode) {
  if (mode == answer_mode::exact)
    return lower(trim_ascii(reference)) == lower(trim_ascii(candidate));
  return equal(parse_value(normalize_answer(reference)), parse_value(normalize_answer(candidate)));
}

grade grade_solution(std::string_view solution, std::string_view reference, answer_mode mode) {
  grade g;
  g.extracted = last_boxed(solution);
  g.correct = g.extracted.has_value() && same_answer(reference, *g.extracted, mode);
  return g;
}

} // namespace pedagogy::classroom
