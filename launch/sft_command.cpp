// `pedagogy sft --config X.toml [--resume] [--force] [overrides]`: supervised fine-tuning of the
// tutor on chat JSONL (the reference's SFT baseline), see actors/sft_job.hpp.
#include "config/config.hpp"
#include "jobs/sft_job.hpp"
#include "launch/commands.hpp"
#include "runtime/logging.hpp"
#include "runtime/signals.hpp"

#include <memory>

namespace pedagogy::launch {

namespace {

struct sft_cli {
  std::string config_path;
  std::vector<std::string> overrides;
  actors::sft_run_options options;
};

int sft(const sft_cli& cli) {
  const auto cfg = load_job_config(cli.config_path, cli.overrides);
  // Ctrl-C or SIGTERM finishes the optimizer step in flight, checkpoints it and exits 130/143;
  // a second signal exits at once.
  signals::install_stop_handlers();
  const auto result = actors::run_sft(cfg, config::to_toml(cfg), cli.options);
  log::flush();
  return result.exit_code;
}

} // namespace

void add_sft_command(CLI::App& app, command_action& action) {
  auto cli = std::make_shared<sft_cli>();
  auto* cmd = app.add_subcommand(
    "sft", "Supervised fine-tuning of the tutor on chat JSONL ([sft]; the SFT baseline)");
  cmd->add_option("--config,-c", cli->config_path, "TOML config file")->required();
  cmd->add_flag("--resume", cli->options.resume, "Continue from the run's newest checkpoint");
  cmd->add_flag("--force", cli->options.force,
                "Start over, deleting an earlier run's metrics, log and checkpoints (refused when "
                "the folder holds anything else)");
  cmd->add_option("overrides", cli->overrides, "Config overrides section.key=value");
  cmd->footer("Writes into logging.run_dir: sft_metrics.jsonl, pedagogy.log, config.toml and "
              "checkpoints/step-N (or checkpoint.dir).");
  cmd->callback([cli, &action] {
    action = [cli] {
      return sft(*cli);
    };
  });
}

} // namespace pedagogy::launch
