// `pedagogy train --config X.toml [--resume [step-N]] [--force] [overrides]`: the RL job.
#include "config/config.hpp"
#include "jobs/train_local.hpp"
#include "launch/commands.hpp"
#include "runtime/signals.hpp"

#include <algorithm>
#include <memory>

namespace pedagogy::launch {

namespace {

struct train_cli {
  std::string config_path;
  std::vector<std::string> overrides;
  size_t overrides_before_resume = 0; // where --resume's word stood among the overrides
  actors::train_options options;
};

int train(train_cli cli) {
  // `--resume train.max_steps=8`: the word after --resume was an override, not a checkpoint.
  if (cli.options.resume_from.find('=') != std::string::npos) {
    const auto at = std::min(cli.overrides_before_resume, cli.overrides.size());
    cli.overrides.insert(cli.overrides.begin() + static_cast<std::ptrdiff_t>(at),
                         cli.options.resume_from);
    cli.options.resume_from.clear();
  }
  const auto cfg = load_job_config(cli.config_path, cli.overrides);
  // Ctrl-C or SIGTERM (Slurm's preemption) finishes the step in flight, checkpoints and exits
  // 130/143; a second signal exits at once.
  signals::install_stop_handlers();
  return actors::train(cfg, config::to_toml(cfg), cli.options);
}

} // namespace

void add_train_command(CLI::App& app, command_action& action) {
  auto cli = std::make_shared<train_cli>();
  auto* cmd = app.add_subcommand(
    "train",
    "Train the tutor with multi-turn GRPO (one process, or one per rank under mpirun/srun)");
  cmd->add_option("--config,-c", cli->config_path, "TOML config file")->required();
  auto* resume =
    cmd
      ->add_option("--resume", cli->options.resume_from,
                   "Continue from the run's newest checkpoint, or from the one named (step-N); "
                   "refused when the config changes the run's groups, problems, models or reward")
      ->expected(0, 1);
  cmd->add_flag(
    "--force", cli->options.force,
    "Start over, deleting an earlier run's metrics, dialogs, log and checkpoints (refused "
    "when the folder holds anything else)");
  auto* overrides =
    cmd->add_option("overrides", cli->overrides, "Config overrides section.key=value");
  cmd->footer(
    "Writes into logging.run_dir: metrics.jsonl, dialogs.jsonl, pedagogy.log, config.toml "
    "and checkpoints/step-N (or checkpoint.dir), step-N holding the weights after step N; "
    "`pedagogy plot RUN` adds metrics.svg there.");
  cmd->callback([cli, cmd, resume, overrides, &action] {
    cli->options.resume = resume->count() > 0;
    // Overrides apply in order, so a word after --resume keeps its place among them.
    cli->overrides_before_resume = 0;
    for (const auto* option : cmd->parse_order()) {
      if (option == resume)
        break;
      if (option == overrides)
        ++cli->overrides_before_resume;
    }
    action = [cli] {
      return train(*cli);
    };
  });
}

} // namespace pedagogy::launch
