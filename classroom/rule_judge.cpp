// Rule-based judges (see rule_judge.hpp).
#include "classroom/rule_judge.hpp"

#include "classroom/answer_check.hpp"
#include "classroom/text.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <cctype>

namespace pedagogy::classroom {

namespace {

// Letters, digits, '_' and any byte of a multi-byte UTF-8 character.
bool word_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return std::isalnum(byte) != 0 || c == '_' || byte >= 0x80;
}

// `needle` occurs in `text` with no letter or digit glued to either side (a decimal point
// followed by a digit counts as glued: "2" does not occur in "2.5").
bool occurs_alone(std::string_view text, std::string_view needle) {
  if (needle.empty())
    return false;
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + 1)) {
    const size_t end = at + needle.size();
    const bool left_free =
      at == 0 ||
      (!word_char(text[at - 1]) &&
       !(text[at - 1] == '.' && at >= 2 && std::isdigit(static_cast<unsigned char>(text[at - 2]))));
    const bool right_free =
      end == text.size() ||
      (!word_char(text[end]) && !((text[end] == '.' || text[end] == '/') && end + 1 < text.size() &&
                                  std::isdigit(static_cast<unsigned char>(text[end + 1]))));
    if (left_free && right_free)
      return true;
  }
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
    if (occurs_alone(seen, reference))
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
