// Answer extraction, normalisation and comparison (see answer_check.hpp). Hand-written scanners
// instead of std::regex: libstdc++'s matcher recurses once per character and overflows the stack
// on long answers, and every sampled solution passes through here.
#include "classroom/answer_check.hpp"

#include "classroom/answer_number.hpp"
#include "classroom/text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

namespace pedagogy::classroom {

namespace {

bool digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

bool letter(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}

bool space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

size_t digits_at(std::string_view s, size_t at) {
  size_t end = at;
  while (end < s.size() && digit(s[end]))
    ++end;
  return end - at;
}

std::string lower(std::string_view text) {
  std::string s(text);
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

// Index of the bracket closing the `open` bracket at `at` (a '{' or '('), or npos.
size_t closing(std::string_view s, size_t at, char open = '{') {
  const char close = open == '{' ? '}' : ')';
  int64_t depth = 0;
  for (size_t i = at; i < s.size(); ++i) {
    if (s[i] == open)
      ++depth;
    else if (s[i] == close && --depth == 0)
      return i;
  }
  return std::string::npos;
}

// \command{content} -> " content", for every occurrence (a \text{} group is its own word).
void unwrap(std::string& s, std::string_view command) {
  const std::string open = std::string(command) + "{";
  for (size_t at = s.find(open); at != std::string::npos; at = s.find(open, at)) {
    const size_t close = closing(s, at + command.size());
    if (close == std::string::npos)
      return;
    s = s.substr(0, at) + " " + s.substr(at + open.size(), close - at - open.size()) +
        s.substr(close + 1);
  }
}

// Splits at commas that are not inside braces, brackets or parentheses.
std::vector<std::string> split_top_level(std::string_view s) {
  std::vector<std::string> parts(1);
  int64_t depth = 0;
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

// "v = E" with one variable name and no other '=': the name and E, each trimmed.
struct assignment {
  std::string name, value;
};

std::optional<assignment> split_assignment(std::string_view s) {
  size_t i = 0;
  if (s.empty() || !letter(s[0]))
    return std::nullopt;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) != 0 || s[i] == '_'))
    ++i;
  const size_t name_end = i;
  while (i < s.size() && space(s[i]))
    ++i;
  if (i == s.size() || s[i] != '=')
    return std::nullopt;
  std::string value = trim_ascii(s.substr(i + 1));
  if (value.empty() || value.find('=') != std::string::npos)
    return std::nullopt;
  return assignment{std::string(s.substr(0, name_end)), std::move(value)};
}

// "5 cm", "12 apples", "7 dollars" -> "5", "12", "7": a number (or percentage), then a space and
// only words. Words may hold letters, dots and spaces; anything else keeps the text as it is.
std::string without_unit_words(const std::string& s) {
  size_t words = s.size();
  while (words > 0 && (letter(s[words - 1]) || s[words - 1] == '.' || space(s[words - 1])))
    --words;
  size_t first = words;
  while (first < s.size() && space(s[first]))
    ++first;
  if (words == 0 || first == words || first == s.size() || !letter(s[first]))
    return s;
  const char last = s[words - 1];
  const bool number_before = digit(last) || (last == '%' && words >= 2 && digit(s[words - 2]));
  return number_before ? s.substr(0, words) : s;
}

// x^{2} -> x^2, a_{1} -> a_1.
std::string without_single_braces(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    out += s[i];
    if ((s[i] == '^' || s[i] == '_') && i + 3 < s.size() && s[i + 1] == '{' && s[i + 3] == '}') {
      out += s[i + 2];
      i += 3;
    }
  }
  return out;
}

// 1,000,000 or -12,345.5% : groups of three digits after one to three leading digits.
bool thousands_separated(std::string_view s) {
  size_t i = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
  const size_t lead = digits_at(s, i);
  if (lead < 1 || lead > 3)
    return false;
  i += lead;
  bool grouped = false;
  for (; i < s.size() && s[i] == ','; i += 4, grouped = true)
    if (digits_at(s, i + 1) != 3)
      return false;
  if (i < s.size() && s[i] == '.') {
    const size_t fraction = digits_at(s, i + 1);
    if (fraction == 0)
      return false;
    i += 1 + fraction;
  }
  if (i < s.size() && s[i] == '%')
    ++i;
  return grouped && i == s.size();
}

// Whatever follows a possible assignment's '=': units, spaces, braces, parentheses, separators.
std::string normalize_value(std::string s) {
  s = without_unit_words(s);
  s.erase(std::remove_if(s.begin(), s.end(), space), s.end());
  s = without_single_braces(s);
  // "(5)" -> "5", but "(1,2)" stays a tuple.
  while (s.size() >= 2 && s.front() == '(' && closing(s, 0, '(') == s.size() - 1 &&
         split_top_level(std::string_view(s).substr(1, s.size() - 2)).size() == 1)
    s = s.substr(1, s.size() - 2);
  if (thousands_separated(s))
    s.erase(std::remove(s.begin(), s.end(), ','), s.end());
  return s;
}

// "m\times10^{k}", "m\cdot10^k", "m*10^k" or a bare "10^k": m ("" when bare) and k.
struct power_of_ten {
  std::string_view mantissa;
  int64_t power = 0;
};

std::optional<power_of_ten> split_power_of_ten(std::string_view s) {
  const size_t caret = s.rfind('^');
  if (caret == std::string_view::npos || caret < 2 || s.substr(caret - 2, 2) != "10")
    return std::nullopt;
  auto power = s.substr(caret + 1);
  if (power.starts_with('{'))
    power.remove_prefix(1);
  if (power.ends_with('}'))
    power.remove_suffix(1);
  const auto k = read_exponent(power);
  const auto mantissa = s.substr(0, caret - 2);
  if (!k)
    return std::nullopt;
  if (mantissa.empty())
    return power_of_ten{mantissa, *k};
  for (std::string_view times : {"\\times", "\\cdot", "*"})
    if (mantissa.size() > times.size() && mantissa.ends_with(times))
      return power_of_ten{mantissa.substr(0, mantissa.size() - times.size()), *k};
  return std::nullopt;
}

struct value {
  enum class kind { number, list, text } type = kind::text;
  answer_number num;
  bool percent = false;
  std::string variable; // lower-case name of an assignment "v = ...", or ""
  std::vector<value> items;
  std::string open, close; // brackets of a list; "" for a bare list
  bool unordered = false;  // sets and bare lists
  std::string text;
};

// Reads a normalised answer by recursive descent. Each step inward costs one level; past
// max_nesting it stops and says so, so adversarial nesting cannot exhaust the stack.
class reader {
public:
  std::string failure; // why the answer is unparsable, or ""

  value read_value(std::string_view s, int depth) {
    value v;
    if (too_deep(depth))
      return v;
    if (auto a = split_assignment(s)) {
      v = read_value(a->value, depth + 1);
      v.variable = lower(a->name);
      return v;
    }
    if (!s.empty() && s.back() == '%') {
      v.percent = true;
      s.remove_suffix(1);
    }
    auto list_of = [&](std::string_view inner, std::string open, std::string close,
                       bool any_order) {
      v.type = value::kind::list;
      v.open = std::move(open);
      v.close = std::move(close);
      v.unordered = any_order;
      for (const auto& part : split_top_level(inner))
        v.items.push_back(read_value(part, depth + 1));
      return v;
    };
    if (s.size() >= 4 && s.starts_with("\\{") && s.ends_with("\\}"))
      return list_of(s.substr(2, s.size() - 4), "{", "}", true);
    if (s.size() >= 2 && (s.front() == '(' || s.front() == '[') &&
        (s.back() == ')' || s.back() == ']') &&
        split_top_level(s.substr(1, s.size() - 2)).size() > 1)
      return list_of(s.substr(1, s.size() - 2), std::string(1, s.front()), std::string(1, s.back()),
                     false);
    if (split_top_level(s).size() > 1)
      return list_of(s, "", "", true);
    if (auto n = read_number(s, depth + 1)) {
      v.type = value::kind::number;
      v.num = *n;
      return v;
    }
    v.text = lower(s);
    return v;
  }

private:
  // Past max_nesting, or once anything was: the answer is unparsable, so no more work.
  bool too_deep(int depth) {
    if (depth <= max_nesting && failure.empty())
      return false;
    if (failure.empty())
      failure = fmt::format("nested deeper than {} levels", max_nesting);
    return true;
  }

  std::optional<answer_number> read_number(std::string_view s, int depth) {
    if (s.empty() || too_deep(depth))
      return std::nullopt;
    if (s[0] == '-' || s[0] == '+') {
      auto rest = read_number(s.substr(1), depth + 1);
      if (rest && s[0] == '-')
        return negated(*rest);
      return rest;
    }
    if (auto d = read_exact_decimal(s))
      return exactly(*d);
    // Once the shape matches, the mantissa alone decides: falling back to the other readings
    // when it fails would make the work exponential in the number of nested suffixes.
    if (auto p = split_power_of_ten(s)) {
      auto m = p->mantissa.empty() ? exactly({false, "1", 0}) : read_number(p->mantissa, depth + 1);
      return m ? times_power_of_ten(*m, p->power) : std::nullopt;
    }
    if (s == "\\pi")
      return approximately(std::numbers::pi);
    if (auto at = s.find("\\frac"); at != std::string_view::npos)
      return read_fraction(s, at, depth);
    if (auto slash = s.find('/');
        slash != std::string_view::npos && s.find('/', slash + 1) == std::string_view::npos) {
      auto n = read_number(s.substr(0, slash), depth + 1);
      auto d = read_number(s.substr(slash + 1), depth + 1);
      if (n && d && d->approx != 0)
        return approximately(n->approx / d->approx);
      return std::nullopt;
    }
    return read_root_or_pi(s, depth);
  }

  // \frac{a}{b}, or \fracab with single-character arguments, optionally after a whole number.
  std::optional<answer_number> read_fraction(std::string_view s, size_t at, int depth) {
    size_t i = at + 5;
    auto argument = [&]() -> std::optional<std::string_view> {
      if (i >= s.size())
        return std::nullopt;
      if (s[i] != '{')
        return s.substr(i++, 1);
      const size_t close = closing(s, i);
      if (close == std::string_view::npos)
        return std::nullopt;
      const auto inner = s.substr(i + 1, close - i - 1);
      i = close + 1;
      return inner;
    };
    const auto num = argument();
    const auto den = argument();
    if (!num || !den || i != s.size())
      return std::nullopt; // the shape first: each part is read once
    auto whole = at > 0 ? read_number(s.substr(0, at), depth + 1) : approximately(0);
    auto n = read_number(*num, depth + 1);
    auto d = read_number(*den, depth + 1);
    if (!whole || !n || !d || d->approx == 0)
      return std::nullopt;
    return approximately(whole->approx + n->approx / d->approx); // a mixed number
  }

  // c\sqrt{x}, c\sqrtx, c\pi: a coefficient times a root or pi.
  std::optional<answer_number> read_root_or_pi(std::string_view s, int depth) {
    for (std::string_view symbol : {"\\sqrt", "\\pi"}) {
      const auto at = s.find(symbol);
      if (at == std::string_view::npos)
        continue;
      auto coefficient =
        at == 0 ? std::optional(approximately(1)) : read_number(s.substr(0, at), depth + 1);
      if (!coefficient)
        return std::nullopt;
      auto rest = s.substr(at + symbol.size());
      if (symbol == "\\pi") {
        if (!rest.empty())
          return std::nullopt;
        return approximately(coefficient->approx * std::numbers::pi);
      }
      if (!rest.empty() && rest.front() == '{' && closing(rest, 0) == rest.size() - 1)
        rest = rest.substr(1, rest.size() - 2);
      auto radicand = read_number(rest, depth + 1);
      if (!radicand || !(radicand->approx >= 0))
        return std::nullopt;
      return approximately(coefficient->approx * std::sqrt(radicand->approx));
    }
    return std::nullopt;
  }
};

bool equal(const value& a, const value& b) {
  if (!a.variable.empty() && !b.variable.empty() && a.variable != b.variable)
    return false; // "x=5" and "y=5" answer different questions
  if (a.type == value::kind::number && b.type == value::kind::number) {
    // "50%" and "0.5" are the same answer; "50" and "50%" match as plain numbers.
    auto percent_of = [](const answer_number& n, const answer_number& fraction) {
      const auto hundredth = times_power_of_ten(n, -2);
      return hundredth && same_number(*hundredth, fraction);
    };
    return same_number(a.num, b.num) || (a.percent && percent_of(a.num, b.num)) ||
           (b.percent && percent_of(b.num, a.num));
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

// Whether the answers agree, and if one cannot be read, why.
struct comparison {
  bool same = false;
  std::string unparsable;
};

comparison compare(std::string_view reference, std::string_view candidate, answer_mode mode) {
  if (mode == answer_mode::exact)
    return {lower(trim_ascii(reference)) == lower(trim_ascii(candidate)), ""};
  std::vector<value> read;
  for (auto [side, answer] : {std::pair{"reference", reference}, std::pair{"answer", candidate}}) {
    if (answer.size() > max_answer_chars)
      return {false, fmt::format("the {} is longer than {} characters", side, max_answer_chars)};
    reader r;
    read.push_back(r.read_value(normalize_answer(answer), 0));
    if (!r.failure.empty())
      return {false, fmt::format("the {} is {}", side, r.failure)};
  }
  return {equal(read[0], read[1]), ""};
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
  const size_t close = closing(text, best + length - 1);
  if (close == std::string_view::npos || close == best + length)
    return std::nullopt;
  return std::string(text.substr(best + length, close - best - length));
}

std::string normalize_answer(std::string_view answer) {
  if (answer.size() > max_answer_chars)
    return std::string(answer);
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
  // "x = 7" keeps its variable as a label ("x=7"); see answer_check.hpp.
  if (auto a = split_assignment(s))
    return a->name + "=" + normalize_value(a->value);
  return normalize_value(s);
}

bool same_answer(std::string_view reference, std::string_view candidate, answer_mode mode) {
  return compare(reference, candidate, mode).same;
}

grade grade_solution(std::string_view solution, std::string_view reference, answer_mode mode) {
  grade g;
  g.extracted = last_boxed(solution);
  if (g.extracted) {
    auto c = compare(reference, *g.extracted, mode);
    g.correct = c.same;
    g.unparsable = std::move(c.unparsable);
  }
  return g;
}

} // namespace pedagogy::classroom
