// `pedagogy config show`: prints the resolved config (file + overrides) as TOML that loads back.
// `pedagogy config plan`: prints where a config puts every role and the memory each rank's device
// must hold, from the models' config.json alone (no weights are read), and fails when it does
// not fit cluster.device_memory_gib.
#include "config/config.hpp"
#include "jobs/memory_plan.hpp"
#include "jobs/placement.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
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
  std::string shapes; // a folder of model folders holding config.json only
};

// The folder under `shapes` for a role's model: its own name, compared without case
// ("weights/Qwen2.5-7B-Instruct" -> SHAPES/qwen2.5-7b-instruct).
std::string shape_folder(const std::string& shapes, const std::string& model) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  const auto name = lower(std::filesystem::path(model).filename().string());
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(shapes, ec))
    if (lower(entry.path().filename().string()) == name)
      return entry.path().string();
  return model;
}

int plan(const plan_options& opts) {
  auto cfg = config::load_file(opts.config_path, opts.overrides);
  if (!opts.shapes.empty()) {
    if (!std::filesystem::is_directory(opts.shapes))
      throw input_error("flag --shapes", fmt::format("'{}' is not a folder", opts.shapes),
                        "give a folder of model folders, e.g. tests/data/shapes");
    for (auto* role : {&cfg.tutor, &cfg.student, &cfg.judge})
      if (!role->model.empty())
        role->model = shape_folder(opts.shapes, role->model);
  }
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
  // GPU ranks unless told otherwise or every role of the config runs on the CPU (tiny presets).
  bool any_gpu = false;
  for (const auto* role : {&cfg.tutor, &cfg.student})
    any_gpu = any_gpu || role->device != "cpu";
  if (actors::needs_judge_generator(cfg))
    any_gpu = any_gpu || cfg.judge.device != "cpu";
  const bool gpu = !opts.cpu && any_gpu;
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
  // "fits" only when every rank's need is known and there is a size to hold it against.
  const auto& unknown = memory.unknown_roles;
  if (!unknown.empty())
    std::cout << fmt::format(
      "verdict: unknown: no config.json for {} (give the model folder, or --shapes DIR with a "
      "folder of that name holding its config.json)\n",
      fmt::join(unknown, ", "));
  else if (!gpu)
    std::cout << "verdict: CPU ranks use host memory: nothing to hold the plan against\n";
  else if (capacity <= 0)
    std::cout << "verdict: unknown: set cluster.device_memory_gib (e.g. 79 for an 80 GB GPU) to "
                 "check the plan\n";
  else
    std::cout << "verdict: the plan fits\n";
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
  plan_cmd->add_flag("--cpu", popts->cpu,
                     "Plan CPU ranks (default: one GPU per rank, unless every role's device is "
                     "cpu)");
  plan_cmd->add_option("--shapes", popts->shapes,
                       "A folder of model folders with config.json only (e.g. tests/data/shapes): "
                       "each role's model is looked up there by its folder name");
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
