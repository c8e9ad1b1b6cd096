// `pedagogy rollout`'s flags (the job is jobs/rollout_job.hpp).
#include "config/config.hpp"
#include "jobs/rollout_job.hpp"
#include "launch/commands.hpp"

#include <memory>
#include <string>
#include <vector>

namespace pedagogy::launch {

namespace {

struct rollout_options {
  std::string config_path;
  std::string problems;
  std::string out;
  int64_t limit = 0;   // 0 = not given: data.max_problems (a given value is checked to be >= 1)
  int64_t samples = 0; // 0 = not given: train.samples_per_problem (likewise)
  bool force = false;
  std::vector<std::string> overrides;
};

int rollout(const rollout_options& opts) {
  actors::rollout_job_options job;
  job.out = opts.out;
  job.problems = opts.problems;
  job.limit = opts.limit;
  job.samples = opts.samples;
  job.force = opts.force;
  return actors::rollout(load_job_config(opts.config_path, opts.overrides), job);
}

} // namespace

void add_rollout_command(CLI::App& app, command_action& action) {
  auto opts = std::make_shared<rollout_options>();
  auto* cmd = app.add_subcommand(
    "rollout", "Run dialogs (problems x samples) with the configured models and write records");
  cmd->add_option("--config,-c", opts->config_path, "TOML config file")->required();
  cmd->add_option("--problems", opts->problems,
                  "Problems JSONL (default: the config's data.train)");
  cmd
    ->add_option("--out,-o", opts->out,
                 "Output JSONL, one dialog record per line (keep it out of a train's run folder, "
                 "whose dialogs.jsonl belongs to the train)")
    ->required()
    ->check(output_file());
  // A given 0 or -1 is an error, not "the default": leaving the flag out means the default.
  const auto max_problems = config::range_of("data.max_problems").max;
  const auto max_samples = config::range_of("train.samples_per_problem").max;
  cmd
    ->add_option("--limit", opts->limit,
                 "Use a seeded sample (train.seed) of N problems, in file order (default: "
                 "data.max_problems)")
    ->check(CLI::Range(int64_t{1}, max_problems));
  cmd
    ->add_option("--samples", opts->samples,
                 "Dialogs per problem (default: train.samples_per_problem)")
    ->check(CLI::Range(int64_t{1}, max_samples));
  cmd->add_flag("--force", opts->force, "Overwrite --out if it exists");
  cmd->add_option("overrides", opts->overrides, "Config overrides section.key=value");
  cmd->callback([opts, &action] {
    action = [opts] {
      return rollout(*opts);
    };
  });
}

} // namespace pedagogy::launch
