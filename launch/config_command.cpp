// `pedagogy config show`: prints the resolved config (file + overrides) as TOML that loads back.
#include "config/config.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>

namespace pedagogy::launch {

namespace {

struct show_options {
  std::string config_path;
  std::vector<std::string> overrides;
};

int show(const show_options& opts) {
  config::config cfg;
  std::string source = "built-in defaults";
  if (opts.config_path.empty()) {
    for (const auto& assignment : opts.overrides)
      config::apply_override(cfg, assignment);
    config::validate(cfg, source);
  } else {
    cfg = config::load_file(opts.config_path, opts.overrides);
    source = opts.config_path;
  }
  std::string header = fmt::format("# pedagogy config, resolved from {}", source);
  if (!opts.overrides.empty())
    header += fmt::format(" with {} override(s)", opts.overrides.size());
  std::cout << header << "\n\n" << config::to_toml(cfg);
  return static_cast<int>(exit_code::ok);
}

} // namespace

void add_config_command(CLI::App& app, command_action& action) {
  auto* config = app.add_subcommand("config", "Inspect configuration files");
  config->require_subcommand(1);

  auto opts = std::make_shared<show_options>();
  auto* show_cmd = config->add_subcommand(
    "show", "Print the resolved config (file, then overrides) as TOML; it loads back unchanged");
  show_cmd->add_option("--config,-c", opts->config_path,
                       "TOML config file (default: the built-in defaults)");
  show_cmd->add_option("overrides", opts->overrides,
                       "Overrides section.key=value, applied in order (e.g. train.mu=1)");
  show_cmd->callback([opts, &action] {
    action = [opts] {
      return show(*opts);
    };
  });
}

} // namespace pedagogy::launch
