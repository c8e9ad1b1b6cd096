// `pedagogy grade --answer A [--mode math|exact]`: grades a solution read from stdin the way the
// classroom does, so a person can check the grader from the shell. It prints one verdict line:
// "correct (extracted: ...)", "incorrect (extracted: ...)", "incorrect (unparsable: why)" for a
// boxed answer too long or too deeply nested to read, or "incorrect (no \boxed{} answer found)",
// and exits 0 whenever it printed one, whatever the input; 2 for bad flags.
#include "classroom/answer_check.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"

#include <iostream>
#include <iterator>

namespace pedagogy::launch {

namespace {

struct grade_options {
  std::string answer;
  std::string mode = "math";
};

int grade(const grade_options& opts) {
  const std::string solution(std::istreambuf_iterator<char>(std::cin), {});
  const auto mode =
    opts.mode == "exact" ? classroom::answer_mode::exact : classroom::answer_mode::math;
  const auto g = classroom::grade_solution(solution, opts.answer, mode);
  std::cout << (g.correct ? "correct" : "incorrect");
  if (!g.unparsable.empty()) // not echoed: it may be megabytes of braces
    std::cout << " (unparsable: " << g.unparsable << ")\n";
  else if (g.extracted)
    std::cout << " (extracted: " << *g.extracted << ")\n";
  else
    std::cout << " (no \\boxed{} answer found)\n";
  return static_cast<int>(exit_code::ok);
}

} // namespace

void add_grade_command(CLI::App& app, command_action& action) {
  auto opts = std::make_shared<grade_options>();
  auto* cmd = app.add_subcommand("grade", "Grade a solution from stdin against a reference answer");
  cmd->add_option("--answer,-a", opts->answer, "The reference answer")->required();
  cmd->add_option("--mode", opts->mode, "math (normalised values) or exact (the reference's match)")
    ->check(CLI::IsMember({"math", "exact"}))
    ->capture_default_str();
  cmd->callback([opts, &action] {
    action = [opts] {
      return grade(*opts);
    };
  });
}

} // namespace pedagogy::launch
