// Rendering each party's view of a dialog (see views.hpp).
#include "classroom/views.hpp"

#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fmt/format.h>

namespace pedagogy::classroom {

namespace {

// Parses a template and renders it once per combination of the variables its role gets, so a
// misspelt variable stops the run at start instead of failing every dialog later.
prompt_template read_template(const std::filesystem::path& file, const std::string& what,
                              const std::vector<template_context>& trials) {
  const std::string text = files::read_regular_file(
    file, fmt::format("the {} template: check classroom.templates_dir, or add the file", what));
  auto parsed = prompt_template::parse(text, file.string());
  for (const auto& context : trials)
    parsed.render(context);
  return parsed;
}

std::vector<template_context> cast_trials() {
  std::vector<template_context> out;
  for (const char* name : {"", "Alex"})
    for (bool thinking : {false, true})
      out.push_back({{"problem", std::string("1 + 1?")},
                     {"student_name", std::string(name)},
                     {"include_thinking", thinking}});
  return out;
}

template_context with_cast(const cast& who) {
  return {{"problem", who.problem},
          {"student_name", who.student_name},
          {"include_thinking", who.include_thinking}};
}

const prompt_template& find(const std::map<std::string, prompt_template>& from,
                            const std::string& key, const char* what) {
  auto it = from.find(key);
  PEDAGOGY_CHECK(it != from.end(), "no {} template '{}' was loaded", what, key);
  return it->second;
}

} // namespace

prompt_set prompt_set::load(const std::filesystem::path& dir,
                            const std::vector<std::string>& personas,
                            const std::vector<std::string>& judge_rules) {
  const auto with_cast = cast_trials();
  const std::vector<template_context> with_dialog = {
    {{"conversation", std::vector<template_record>{{{"role", "teacher"}, {"content", "Hi"}},
                                                   {{"role", "student"}, {"content", "Hello"}}}}}};
  prompt_set out{read_template(dir / "tutor.txt", "tutor", with_cast),
                 read_template(dir / "student_initial_attempt.txt", "initial attempt", with_cast),
                 read_template(dir / "initial_attempt_wrapper.txt", "attempt wrapper",
                               {{{"attempt", std::string("x = 2")}}}),
                 read_template(dir / "student_attempt.txt", "pre-dialog attempt", with_cast),
                 read_template(dir / "student_final.txt", "final solution", {{}}),
                 {},
                 {}};
  for (const auto& p : personas)
    out.personas.emplace(p, read_template(dir / "personas" / (p + ".txt"), "persona", with_cast));
  for (const auto& r : judge_rules)
    out.judges.emplace(r, read_template(dir / "judges" / (r + ".txt"), "judge", with_dialog));
  return out;
}

std::vector<models::chat_message> tutor_view(const prompt_set& prompts, const cast& who,
                                             const conversation& dialog) {
  std::vector<models::chat_message> out{{"system", prompts.tutor.render(with_cast(who))}};
  for (const auto& m : dialog.messages())
    out.push_back({m.from_tutor ? "assistant" : "user", m.content});
  return out;
}

std::vector<models::chat_message> student_view(const prompt_set& prompts, const cast& who,
                                               const conversation& dialog) {
  std::vector<models::chat_message> out{
    {"system", find(prompts.personas, who.persona, "persona").render(with_cast(who))}};
  for (const auto& m : dialog.messages())
    out.push_back({m.from_tutor ? "user" : "assistant", visible_text(m.content)});
  return out;
}

std::vector<models::chat_message> initial_attempt_view(const prompt_set& prompts, const cast& who) {
  return {{"system", prompts.initial_attempt.render(with_cast(who))}};
}

std::string wrap_attempt(const prompt_set& prompts, const std::string& attempt) {
  return prompts.attempt_wrapper.render({{"attempt", attempt}});
}

std::vector<models::chat_message> final_solution_view(const prompt_set& prompts, const cast& who,
                                                      const conversation& dialog) {
  auto out = student_view(prompts, who, dialog);
  out.push_back({"user", prompts.final_solution.render({})});
  return out;
}

std::vector<models::chat_message> pre_dialog_view(const prompt_set& prompts, const cast& who) {
  return {{"user", prompts.pre_dialog_attempt.render(with_cast(who))}};
}

std::string judge_prompt(const prompt_set& prompts, const std::string& rule,
                         const conversation& dialog) {
  std::vector<template_record> messages;
  for (const auto& m : dialog.messages())
    messages.push_back(
      {{"role", m.from_tutor ? "teacher" : "student"}, {"content", visible_text(m.content)}});
  return find(prompts.judges, rule, "judge").render({{"conversation", std::move(messages)}});
}

ped_prompts ped_prompts::load(const std::filesystem::path& dir, const std::string& policy) {
  PEDAGOGY_CHECK(policy == "tutor" || policy == "solver", "no ped policy '{}'", policy);
  const std::vector<template_context> problem_only = {{{"problem", std::string("1 + 1?")}}};
  const std::vector<template_context> with_answer = {
    {{"problem", std::string("1 + 1?")}, {"answer", std::string("2")}}};
  return {read_template(dir / "solver.txt", "solver", problem_only),
          read_template(dir / ("ped_teacher_" + policy + ".txt"), "ped_teacher", with_answer)};
}

ped_rm_prompts ped_rm_prompts::load(const std::filesystem::path& dir) {
  return {read_template(dir / "ped_rm_system.txt", "reward model system", {{}}),
          read_template(dir / "ped_rm_user.txt", "reward model user",
                        {{{"problem", std::string("1 + 1?")}}})};
}

std::vector<ped_rm_input> ped_rm_inputs(const ped_rm_prompts& prompts, const std::string& problem,
                                        const std::vector<dialog_message>& messages) {
  std::vector<models::chat_message> prefix = {
    {"system", prompts.system.render({})}, {"user", prompts.user.render({{"problem", problem}})}};
  std::vector<ped_rm_input> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    models::chat_message shown{m.from_tutor ? "assistant" : "user", visible_text(m.content)};
    if (m.from_tutor && (i == 0 || !messages[i - 1].from_tutor)) {
      ped_rm_input input{i, prefix};
      input.conversation.push_back(shown);
      out.push_back(std::move(input));
    }
    prefix.push_back(std::move(shown));
  }
  return out;
}

std::vector<models::chat_message> solver_view(const ped_prompts& prompts,
                                              const std::string& problem) {
  return {{"user", prompts.solver.render({{"problem", problem}})}};
}

std::string privileged_block(const ped_prompts& prompts, const std::string& problem,
                             const std::string& answer) {
  return prompts.ped_teacher.render({{"problem", problem}, {"answer", answer}});
}

std::vector<models::chat_message> with_privileged(std::vector<models::chat_message> view,
                                                  const std::string& block) {
  if (block.find_first_not_of(" \t\r\n") == std::string::npos)
    return view; // nothing privileged: the deployment view itself
  if (!view.empty() && view.front().role == "system")
    view.front().content += "\n\n" + block;
  else
    view.insert(view.begin(), {"system", block});
  return view;
}

} // namespace pedagogy::classroom
