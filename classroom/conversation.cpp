// The dialog state machine (see conversation.hpp).
#include "classroom/conversation.hpp"

#include "runtime/errors.hpp"

namespace pedagogy::classroom {

bool judge_record::rejected() const {
  for (const auto& v : verdicts)
    if (v.value == decision::reject)
      return true;
  return false;
}

conversation::conversation(dialog_type type, dialog_limits limits)
  : type_(type), limits_(std::move(limits)) {}

void conversation::expect(phase wanted, const char* event) const {
  PEDAGOGY_CHECK(phase_ == wanted, "{} called in phase {} (expected {})", event, to_string(phase_),
                 to_string(wanted));
}

phase conversation::start() {
  expect(phase::start, "start");
  return phase_ = type_ == dialog_type::guided ? phase::tutor_turn : phase::student_turn;
}

phase conversation::on_tutor_reply(std::string text, int64_t tokens) {
  expect(phase::tutor_turn, "on_tutor_reply");
  // Anywhere in the reply, inside a think block too, as in the reference.
  ended_by_tutor_ = text.find(end_marker) != std::string::npos;
  messages_.push_back({true, std::move(text), tokens});
  ++tutor_turns_;
  return after_message();
}

phase conversation::on_student_reply(std::string text, int64_t tokens) {
  expect(phase::student_turn, "on_student_reply");
  messages_.push_back({false, std::move(text), tokens});
  return after_message();
}

// The one place where the end marker, the turn limit and the token budget end a dialog.
phase conversation::after_message() {
  const dialog_message& last = messages_.back();
  content_tokens_ += last.tokens;
  phase next = last.from_tutor ? phase::student_turn : phase::tutor_turn;
  if (last.from_tutor && (ended_by_tutor_ || tutor_turns_ >= limits_.max_tutor_turns))
    next = phase::judging;
  if (content_tokens_ > limits_.max_tokens_in_conversation)
    next = phase::judging;
  if (next == phase::judging && (limits_.judge_attempts == 0 || limits_.judge_rules.empty()))
    next = phase::solving;
  return phase_ = next;
}

const std::string& conversation::judge_rule() const {
  expect(phase::judging, "judge_rule");
  return limits_.judge_rules[rule_];
}

int64_t conversation::verdicts_wanted() const {
  return phase_ == phase::judging ? limits_.judge_attempts - static_cast<int64_t>(pending_.size())
                                  : 0;
}

phase conversation::on_verdicts(const std::vector<std::optional<verdict>>& round) {
  expect(phase::judging, "on_verdicts");
  ++round_;
  for (const auto& v : round)
    if (v && static_cast<int64_t>(pending_.size()) < limits_.judge_attempts)
      pending_.push_back(*v);
  const int64_t missing = limits_.judge_attempts - static_cast<int64_t>(pending_.size());
  if (missing > 0 && round_ < limits_.judge_parse_rounds)
    return phase_; // ask again for the missing verdicts

  judge_record record{limits_.judge_rules[rule_], std::move(pending_), missing};
  for (int64_t i = 0; i < missing; ++i)
    record.verdicts.push_back(
      {limits_.unparsed_rejects ? decision::reject : decision::ok, "no parsable verdict"});
  judgements_.push_back(std::move(record));
  pending_.clear();
  round_ = 0;
  return after_judging();
}

phase conversation::after_judging() {
  if (judgements_.back().rejected() && !limits_.ignore_rejected_judge)
    return phase_ = phase::done; // hard mode: no solutions, the reward is -lambda
  if (++rule_ < limits_.judge_rules.size())
    return phase_; // the next rule, in the configured order
  return phase_ = phase::solving;
}

bool conversation::rejected() const {
  for (const auto& j : judgements_)
    if (j.rejected())
      return true;
  return false;
}

phase conversation::on_solutions(std::vector<std::string> solutions) {
  expect(phase::solving, "on_solutions");
  solutions_ = std::move(solutions);
  return phase_ = phase::grading;
}

phase conversation::on_grades(std::vector<bool> correct) {
  expect(phase::grading, "on_grades");
  PEDAGOGY_CHECK(correct.size() == solutions_.size(), "{} grades for {} solutions", correct.size(),
                 solutions_.size());
  grades_ = std::move(correct);
  return phase_ = phase::done;
}

std::string visible_text(std::string_view text) {
  // Each <think> up to the first </think> after it, as the reference's non-greedy regex; a
  // </think> before any <think> is no block, and stays.
  std::string out(text);
  for (size_t open = out.find("<think>"); open != std::string::npos;
       open = out.find("<think>", open)) {
    const size_t close = out.find("</think>", open);
    out.erase(open, close == std::string::npos ? std::string::npos : close + 8 - open);
  }
  for (size_t at = out.find(end_marker); at != std::string::npos; at = out.find(end_marker, at))
    out.erase(at, end_marker.size());
  return out;
}

scenario choose_scenario(std::string_view problem, uint64_t seed, size_t names, size_t personas) {
  uint64_t h = 14695981039346656037ull; // FNV-1a, 64 bit
  auto mix = [&](unsigned char byte) {
    h ^= byte;
    h *= 1099511628211ull;
  };
  for (int i = 0; i < 8; ++i)
    mix(static_cast<unsigned char>(seed >> (8 * i)));
  for (char c : problem)
    mix(static_cast<unsigned char>(c));
  // FNV's low bits are weak (bit 0 is the parity of the bytes' bit 0): finish with an avalanche
  // (MurmurHash3's fmix64) before taking bits.
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  scenario s;
  s.type = (h & 1) != 0 ? dialog_type::attempted : dialog_type::guided;
  s.name = names == 0 ? 0 : (h >> 8) % names;
  s.persona = personas == 0 ? 0 : (h >> 24) % personas;
  return s;
}

std::string to_string(phase p) {
  switch (p) {
    case phase::start:
      return "start";
    case phase::tutor_turn:
      return "tutor_turn";
    case phase::student_turn:
      return "student_turn";
    case phase::judging:
      return "judging";
    case phase::solving:
      return "solving";
    case phase::grading:
      return "grading";
    case phase::done:
      return "done";
  }
  return "?";
}

} // namespace pedagogy::classroom
