// What each party of a dialog sees (classroom.md §1.5), rendered from prompt_templates/:
//
//   tutor     system = tutor.txt; its own turns as assistant, the student's as user, raw (its
//             thinking and end markers kept)
//   student   system = personas/<persona>.txt; its own turns as assistant, the tutor's as user,
//             think blocks and end markers removed
//   student, first turn of an ATTEMPTED dialog: student_initial_attempt.txt alone, as system;
//             the answer is wrapped with initial_attempt_wrapper.txt
//   student, final solutions: the student view + student_final.txt as user
//   judge     judges/<rule>.txt with the hidden dialog, as one user message
//   solver    solver.txt as one user message (ped.policy = "solver": the trained policy solves)
//   ped_teacher (Pedagogical RL) the trained policy's view plus ped_teacher_<policy>.txt, the
//             privileged block with the answer, at the end of its system message; no other view
//             ever gets it
#pragma once

#include "classroom/conversation.hpp"
#include "classroom/prompt_template.hpp"
#include "models/text/chat_message.hpp"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace pedagogy::classroom {

// Every template a classroom needs, parsed once at start so that a bad file fails before any
// model is loaded.
struct prompt_set {
  prompt_template tutor;
  prompt_template initial_attempt;
  prompt_template attempt_wrapper;
  prompt_template pre_dialog_attempt;
  prompt_template final_solution;
  std::map<std::string, prompt_template> personas; // by persona name
  std::map<std::string, prompt_template> judges;   // by rule name

  // Reads <dir>/tutor.txt, ..., personas/<p>.txt, judges/<r>.txt and renders each once with the
  // variables its role gets; throws input_error naming the missing or broken file (and line for
  // a syntax error or an unknown variable). Pass no rules when the judges are rules.
  static prompt_set load(const std::filesystem::path& dir, const std::vector<std::string>& personas,
                         const std::vector<std::string>& judge_rules);
};

// The templates of Pedagogical RL and of a trained solver, loaded only when a run uses them.
struct ped_prompts {
  prompt_template solver;      // solver.txt
  prompt_template ped_teacher; // ped_teacher_tutor.txt or ped_teacher_solver.txt

  // `policy` is "tutor" or "solver". Throws input_error naming a missing or broken file.
  static ped_prompts load(const std::filesystem::path& dir, const std::string& policy);
};

// The pedagogical reward model's prompt (evaluation only): ped_rm_system.txt as system,
// ped_rm_user.txt (variable: problem) as the first user message.
struct ped_rm_prompts {
  prompt_template system;
  prompt_template user;

  static ped_rm_prompts load(const std::filesystem::path& dir);
};

// The people of one dialog.
struct cast {
  std::string problem;
  std::string student_name; // "" = unnamed
  std::string persona;      // key into prompt_set::personas
  bool include_thinking = false;
};

std::vector<models::chat_message> tutor_view(const prompt_set& prompts, const cast& who,
                                             const conversation& dialog);
std::vector<models::chat_message> student_view(const prompt_set& prompts, const cast& who,
                                               const conversation& dialog);
std::vector<models::chat_message> initial_attempt_view(const prompt_set& prompts, const cast& who);
std::string wrap_attempt(const prompt_set& prompts, const std::string& attempt);
std::vector<models::chat_message> final_solution_view(const prompt_set& prompts, const cast& who,
                                                      const conversation& dialog);
std::vector<models::chat_message> pre_dialog_view(const prompt_set& prompts, const cast& who);
std::string judge_prompt(const prompt_set& prompts, const std::string& rule,
                         const conversation& dialog);

// What the pedagogical reward model scores in a dialog (reference/classroom.md §6): one
// conversation per scored tutor turn, which is every tutor turn that opens the dialog or follows
// a student turn. Each is the system and user prompt, then the dialog up to and including that
// turn with think blocks and end markers removed, the tutor as assistant and the student as user.
// Returns the scored turns' message indices beside the conversations.
struct ped_rm_input {
  size_t message = 0; // index into `messages`
  std::vector<models::chat_message> conversation;
};
std::vector<ped_rm_input> ped_rm_inputs(const ped_rm_prompts& prompts, const std::string& problem,
                                        const std::vector<dialog_message>& messages);

// The trained solver's prompt.
std::vector<models::chat_message> solver_view(const ped_prompts& prompts,
                                              const std::string& problem);
// The privileged block of one problem (the ped_teacher's alone).
std::string privileged_block(const ped_prompts& prompts, const std::string& problem,
                             const std::string& answer);
// `view` as the ped_teacher sees it: `block` appended to its system message after a blank line,
// or, without one, a system message of its own put first. Every other message is unchanged. An
// empty (or blank) block leaves the view as it is.
std::vector<models::chat_message> with_privileged(std::vector<models::chat_message> view,
                                                  const std::string& block);

} // namespace pedagogy::classroom
