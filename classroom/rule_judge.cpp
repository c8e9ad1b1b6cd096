// Rule-based judges (see rule_judge.hpp).
#include "classroom/rule_judge.hpp"

#include "classroom/answer_check.hpp"
#include "classroom/text.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>

namespace pedagogy::classroom {

namespace {

bool space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

bool letter(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}

bool digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

// Letters, digits, '_' and any byte of a multi-byte UTF-8 character.
bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool same_word(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool one_of(std::string_view word, std::initializer_list<std::string_view> words) {
  return std::any_of(words.begin(), words.end(), [&](auto w) { return same_word(word, w); });
}

// Words after which a number names a thing instead of stating a value.
bool label_word(std::string_view word) {
  return one_of(word, {"step", "part", "case", "question", "problem", "exercise", "example",
                       "equation", "line", "hint", "method", "option", "stage", "page", "item"});
}

bool operator_command(std::string_view name) {
  return name == "times" || name == "cdot" || name == "div";
}

// Commands whose argument is shown as it is, so a value inside them is stated.
bool showing_command(std::string_view name) {
  return name == "boxed" || name == "fbox" || name == "text" || name == "textbf" ||
         name == "mathbf" || name == "mathrm";
}

// Operators that the UTF-8 text of a reply may spell as symbols: × ÷ ⋅ · −.
constexpr std::string_view symbol_operators[] = {"\u00D7", "\u00F7", "\u22C5", "\u00B7", "\u2212"};

// The letters of `text` that end just before `end`, e.g. "times" in "3 \times".
std::string_view letters_before(std::string_view text, size_t end) {
  size_t begin = end;
  while (begin > 0 && letter(text[begin - 1]))
    --begin;
  return text.substr(begin, end - begin);
}

// Whether what precedes `at` (spaces skipped) makes the text there an operand, an argument of a
// command or a label.
bool bound_on_the_left(std::string_view text, size_t at) {
  while (at > 0 && space(text[at - 1]))
    --at;
  if (at == 0)
    return false;
  const char c = text[at - 1];
  if (std::string_view("+-*/^_#").find(c) != std::string_view::npos)
    return true;
  for (auto symbol : symbol_operators)
    if (text.substr(0, at).ends_with(symbol))
      return true;
  if (letter(c)) {
    const auto word = letters_before(text, at);
    const bool command = word.size() < at && text[at - word.size() - 1] == '\\';
    return command ? operator_command(word) : label_word(word);
  }
  if (c == '{' && at >= 2) {
    const char before = text[at - 2];
    if (before == '^' || before == '_' || before == '}')
      return true; // an exponent, a subscript, or a later argument as in \frac{1}{2}
    const auto name = letters_before(text, at - 1);
    return !name.empty() && name.size() < at - 1 && text[at - name.size() - 2] == '\\' &&
           !showing_command(name);
  }
  return false;
}

// Whether what follows `end` (spaces skipped) makes the text before it an operand.
bool bound_on_the_right(std::string_view text, size_t end) {
  while (end < text.size() && space(text[end]))
    ++end;
  if (end == text.size())
    return false;
  if (std::string_view("+-*/^_").find(text[end]) != std::string_view::npos)
    return true;
  for (auto symbol : symbol_operators)
    if (text.substr(end).starts_with(symbol))
      return true;
  if (text[end] != '\\')
    return false;
  size_t name_end = end + 1;
  while (name_end < text.size() && letter(text[name_end]))
    ++name_end;
  return operator_command(text.substr(end + 1, name_end - end - 1));
}

// Whether the occurrence of the answer at [at, end) states it (see rule_judge.hpp).
bool stated_at(std::string_view text, size_t at, size_t end) {
  if ((at > 0 && word_char(text[at - 1])) || (end < text.size() && word_char(text[end])))
    return false; // part of a word or a longer number
  auto number_mark = [](char c) {
    return c == '.' || c == ',';
  };
  if (at >= 2 && number_mark(text[at - 1]) && digit(text[at - 2]))
    return false; // "1.2", "1,2"
  if (end + 1 < text.size() && number_mark(text[end]) && digit(text[end + 1]))
    return false; // "2.5", "2,000"
  return !bound_on_the_left(text, at) && !bound_on_the_right(text, end);
}

// Whether `text` states `answer` anywhere.
bool states(std::string_view text, std::string_view answer) {
  if (answer.empty())
    return false;
  for (size_t at = text.find(answer); at != std::string_view::npos; at = text.find(answer, at + 1))
    if (stated_at(text, at, at + answer.size()))
      return true;
  return false;
}

} // namespace

bool has_rule_judge(std::string_view rule) {
  return rule == "does_not_leak_answer";
}

namespace {

// The first tutor turn stating the answer, and how it says it.
struct leak {
  int turn = 0; // 1-based; 0 = none
  std::string how;
};

leak find_leak(const std::vector<dialog_message>& messages, std::string_view answer) {
  const std::string reference = trim_ascii(answer);
  int turn = 0;
  for (const auto& m : messages) {
    if (!m.from_tutor)
      continue;
    ++turn;
    const std::string seen = visible_text(m.content);
    if (states(seen, reference))
      return {turn, fmt::format("tutor turn {} states the answer {}", turn, reference)};
    if (auto boxed = last_boxed(seen); boxed && same_answer(reference, *boxed, answer_mode::math))
      return {turn, fmt::format("tutor turn {} boxes the answer {}", turn, *boxed)};
  }
  return {};
}

} // namespace

int leaking_turn(const std::vector<dialog_message>& messages, std::string_view answer) {
  return find_leak(messages, answer).turn;
}

verdict rule_verdict(std::string_view rule, const conversation& dialog, std::string_view answer) {
  PEDAGOGY_CHECK(has_rule_judge(rule), "no rule-based judge for '{}'", rule);
  if (auto found = find_leak(dialog.messages(), answer); found.turn > 0)
    return {decision::reject, found.how};
  return {decision::ok, "the answer does not appear in any tutor turn"};
}

} // namespace pedagogy::classroom
