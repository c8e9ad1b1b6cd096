// `pedagogy eval --config X.toml [--tutor [LABEL=]MODEL ...] --out DIR [--solve] [--resume]`:
// the reference's evaluation of one or more tutors against one student and one set of judges,
// or (--solve) plain solve accuracy, written as a table (jobs/eval.hpp).
#include "config/config.hpp"
#include "jobs/eval.hpp"
#include "launch/commands.hpp"

#include <memory>
#include <string>
#include <vector>

namespace pedagogy::launch {

namespace {

struct eval_cli {
  std::string config_path;
  std::vector<std::string> tutors;
  std::string out;
  std::string problems;
  int64_t limit = 0;
  bool solve = false;
  bool resume = false;
  std::vector<std::string> overrides;
};

int eval(const eval_cli& cli) {
  const auto cfg = load_job_config(cli.config_path, cli.overrides);
  actors::eval_run_options opts;
  opts.out = cli.out;
  opts.solve = cli.solve;
  opts.resume = cli.resume;
  opts.limit = cli.limit;
  opts.problems = cli.problems;
  for (const auto& spec : cli.tutors)
    opts.tutors.push_back(actors::parse_tutor_spec(spec, cfg.tutor));
  return actors::run_evaluation(cfg, opts);
}

} // namespace

void add_eval_command(CLI::App& app, command_action& action) {
  auto cli = std::make_shared<eval_cli>();
  auto* cmd = app.add_subcommand(
    "eval", "Evaluate tutors: pre/post-dialog solve rate, leaks, pedagogy, reward model (a table)");
  cmd->add_option("--config,-c", cli->config_path, "TOML config file")->required();
  cmd
    ->add_option("--tutor,-t", cli->tutors,
                 "A tutor to evaluate, repeatable: [LABEL=]MODEL_DIR or "
                 "[LABEL=]SERVED_NAME@http://HOST:PORT/v1 (default: the config's [tutor])")
    // One value per --tutor, so the overrides after it stay overrides.
    ->allow_extra_args(false);
  cmd
    ->add_option("--out,-o", cli->out,
                 "Output folder of its own: records as they finish, then results.md and "
                 "results.json")
    ->required();
  cmd->add_option("--problems", cli->problems,
                  "Problems JSONL (default: the config's eval.problems)");
  cmd
    ->add_option("--limit", cli->limit,
                 "A seeded sample (train.seed) of N problems (default: eval.max_problems)")
    ->check(CLI::Range(int64_t{1}, config::range_of("eval.max_problems").max));
  cmd->add_flag("--solve", cli->solve,
                "Plain solve accuracy instead: each tutor solves every problem eval.solve_samples "
                "times alone (pass@1, pass@k)");
  cmd->add_flag("--resume", cli->resume,
                "Complete an interrupted evaluation in --out (finished rows are kept, failed "
                "ones run again)");
  cmd->add_option("overrides", cli->overrides, "Config overrides section.key=value");
  cmd->callback([cli, &action] {
    action = [cli] {
      return eval(*cli);
    };
  });
}

} // namespace pedagogy::launch
