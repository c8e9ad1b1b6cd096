// `pedagogy config show`: prints the resolved config (file + overrides) as TOML that loads back.
// `pedagogy config plan`: prints where a config puts every role and the memory each rank's device
// must hold, from the models' config.json alone (no weights are read), and fails when it does
// not fit cluster.device_memory_gib.
#include "actors/memory_plan.hpp"
#include "actors/placement.hpp"
#include "config/config.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <algorithm>
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

struct plan_options {
  std::string config_path;
  std::vector<std::string> overrides;
  int world = 0;
  bool cpu = false;
};

int plan(const plan_options& opts) {
  const auto cfg = config::load_file(opts.config_path, opts.overrides);
  int world = opts.world;
  if (world <= 0) {
    // Enough ranks for every rank the config names.
    int64_t highest = 0;
    for (const auto* role : {&cfg.tutor, &cfg.student, &cfg.judge})
      for (int64_t r : role->ranks)
        highest = std::max(highest, r);
    for (int64_t r : cfg.cluster.learner_ranks)
      highest = std::max(highest, r);
    world = static_cast<int>(highest + 1);
  }
  const bool gpu = !opts.cpu;
  const auto where = actors::plan_placement(cfg, world, gpu);
  std::vector<ranks::rank_info> infos(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) {
    auto& info = infos[static_cast<size_t>(r)];
    info.rank = r;
    info.world_size = world;
    info.node = "(planned)";
    info.device = gpu ? fmt::format("cuda:{}", r % 8) : "cpu";
  }
  const double capacity = cfg.cluster.device_memory_gib * 1024.0 * 1024.0 * 1024.0;
  const auto memory = actors::plan_memory(
    cfg, where, actors::shapes_from_config(cfg), [&](int) { return capacity; }, gpu);
  std::cout << "placement (" << world << " ranks):\n"
            << actors::placement_table(where, infos) << "\nmemory plan per device ("
            << (capacity > 0
                  ? fmt::format("cluster.device_memory_gib = {}", cfg.cluster.device_memory_gib)
                  : std::string("device size not set: nothing checked"))
            << "):\n"
            << memory.table();
  actors::check_memory_plan(memory);
  std::cout << (capacity > 0 ? "the plan fits\n" : "");
  return static_cast<int>(exit_code::ok);
}

} // namespace

void add_config_command(CLI::App& app, command_action& action) {
  auto* config = app.add_subcommand("config", "Inspect configuration files");
  config->require_subcommand(1);

  auto opts = std::make_shared<show_options>();
  auto* show_cmd = config->add_subcommand(
    "show", "Print the resolved config (file, then overrides) as TOML; it loads back unchanged");
  show_cmd
    ->add_option("--config,-c", opts->config_path,
                 "TOML config file (default: the built-in defaults)")
    ->check(CLI::Validator(
      [](std::string& path) {
        return path.empty() ? "an empty path: leave --config out for the built-in defaults"
                            : std::string();
      },
      "FILE"));
  show_cmd->add_option("overrides", opts->overrides,
                       "Overrides section.key=value, applied in order (e.g. train.mu=1)");
  show_cmd->callback([opts, &action] {
    action = [opts] {
      return show(*opts);
    };
  });

  auto popts = std::make_shared<plan_options>();
  auto* plan_cmd = config->add_subcommand(
    "plan", "Print each rank's roles and the device memory they need (models' config.json only); "
            "fails when a rank does not fit cluster.device_memory_gib");
  plan_cmd->add_option("--config,-c", popts->config_path, "TOML config file")->required();
  plan_cmd->add_option("--world", popts->world,
                       "Ranks of the job (default: enough for every rank the config names)");
  plan_cmd->add_flag("--cpu", popts->cpu, "Plan CPU ranks (default: one GPU per rank)");
  plan_cmd->add_option(
    "overrides", popts->overrides,
    "Overrides section.key=value, applied in order (e.g. train.micro_batch_size=1)");
  plan_cmd->callback([popts, &action] {
    action = [popts] {
      return plan(*popts);
    };
  });
}

} // namespace pedagogy::launch
