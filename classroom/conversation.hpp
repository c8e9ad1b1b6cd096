// One tutoring dialog as a state machine (the reference's Conversation, classroom.md §1), a
// plain value: the conversation actor renders prompts, asks generators, and feeds the answers in
// through one function per event; each returns the phase to act on next.
//
//            guided                      tutor ends (<end_of_conversation>), max tutor turns,
//   START ─────────────> TUTOR_TURN ──── or the dialog's token budget ─────────┐
//     │                   │      ▲                                            ▼
//     │ attempted         ▼      │                                         JUDGING ── rule by rule,
//     └──────────────> STUDENT_TURN                                          │    verdict rounds
//                      (first: its own attempt)          any REJECT, hard ───┼──────────────> DONE
//                                                        mode (-lambda)      │ all OK, soft mode,
//                                                                            ▼ or no judges
//                                                  DONE <── GRADING <──── SOLVING (K solutions)
//
// Limits are checked in one place (after_message); the reference's quirks are fixed on purpose:
// judge rules run in a fixed order, unparsed verdicts follow a policy (reject by default), and a
// student's end marker is not a way out.
#pragma once

#include "classroom/verdict.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pedagogy::classroom {

enum class phase { start, tutor_turn, student_turn, judging, solving, grading, done };
enum class dialog_type { guided, attempted };

inline constexpr std::string_view end_marker = "<end_of_conversation>";

struct dialog_message {
  bool from_tutor = false;
  std::string content; // raw: the tutor's own thinking and end marker included
  int64_t tokens = 0;  // content tokens, for the dialog's budget
};

struct judge_record {
  std::string rule;
  std::vector<verdict> verdicts; // one per attempt, unparsed ones filled in by the policy
  int64_t unparsed = 0;          // how many of them never parsed
  bool rejected() const;
};

struct dialog_limits {
  int64_t max_tutor_turns = 8;
  int64_t max_tokens_in_conversation = 8192;
  std::vector<std::string> judge_rules; // in order
  int64_t judge_attempts = 2;           // verdicts per rule; 0 = no judging
  int64_t judge_parse_rounds = 5;       // rounds of re-asking for verdicts that did not parse
  bool unparsed_rejects = true;         // what a verdict that never parses counts as
  bool ignore_rejected_judge = false;   // false = hard mode: a rejection ends the dialog
};

class conversation {
public:
  conversation(dialog_type type, dialog_limits limits);

  phase start();
  phase on_tutor_reply(std::string text, int64_t tokens);
  // The first student message of an attempted dialog is its attempt, already wrapped.
  phase on_student_reply(std::string text, int64_t tokens);
  // Verdicts of one round for the current rule; none = did not parse.
  phase on_verdicts(const std::vector<std::optional<verdict>>& round);
  phase on_solutions(std::vector<std::string> solutions);
  phase on_grades(std::vector<bool> correct);

  phase current() const {
    return phase_;
  }
  dialog_type type() const {
    return type_;
  }
  const std::vector<dialog_message>& messages() const {
    return messages_;
  }
  // The rule being judged, and how many verdicts to ask for in this round.
  const std::string& judge_rule() const;
  int64_t verdicts_wanted() const;
  const std::vector<judge_record>& judgements() const {
    return judgements_;
  }
  bool rejected() const;
  bool ended_by_tutor() const {
    return ended_by_tutor_;
  }
  const std::vector<std::string>& solutions() const {
    return solutions_;
  }
  const std::vector<bool>& grades() const {
    return grades_;
  }
  int64_t tutor_turns() const {
    return tutor_turns_;
  }
  int64_t content_tokens() const {
    return content_tokens_;
  }

private:
  phase after_message();
  phase after_judging();
  void expect(phase wanted, const char* event) const;

  dialog_type type_;
  dialog_limits limits_;
  phase phase_ = phase::start;
  std::vector<dialog_message> messages_;
  int64_t tutor_turns_ = 0;
  int64_t content_tokens_ = 0;
  bool ended_by_tutor_ = false;
  size_t rule_ = 0;   // index into limits_.judge_rules
  int64_t round_ = 0; // verdict rounds asked for the current rule
  std::vector<verdict> pending_;
  std::vector<judge_record> judgements_;
  std::vector<std::string> solutions_;
  std::vector<bool> grades_;
};

// What the student and the judges see of a message: <think>...</think> blocks removed (an unclosed
// one to the end of the message) and end markers removed. A stray </think> is text, as in the
// reference.
std::string visible_text(std::string_view text);

// The scenario of a problem (dialog type, student name, persona), the same for every sample of it
// and on every run: FNV-1a of the seed and problem text with a final avalanche, not std::hash.
struct scenario {
  dialog_type type = dialog_type::guided;
  size_t name = 0;    // index into the student names
  size_t persona = 0; // index into the personas
};
scenario choose_scenario(std::string_view problem, uint64_t seed, size_t names, size_t personas);

std::string to_string(phase p);

} // namespace pedagogy::classroom
