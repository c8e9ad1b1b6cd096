// `pedagogy train --config X.toml [--resume] [--force] [overrides]`: the RL job.
#include "actors/trainer.hpp"
#include "config/config.hpp"
#include "launch/commands.hpp"
#include "runtime/signals.hpp"

#include <memory>

namespace pedagogy::launch {

namespace {

struct train_cli {
  std::string config_path;
  std::vector<std::string> overrides;
  actors::train_options options;
};

int train(const train_cli& cli) {
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
  cmd->add_flag("--resume", cli->options.resume, "Continue from the run's newest checkpoint");
  cmd->add_flag(
    "--force", cli->options.force,
    "Start over, deleting an earlier run's metrics, dialogs, log and checkpoints (refused "
    "when the folder holds anything else)");
  cmd->add_option("overrides", cli->overrides, "Config overrides section.key=value");
  cmd->callback([cli, &action] {
    action = [cli] {
      return train(*cli);
    };
  });
}

} // namespace pedagogy::launch
