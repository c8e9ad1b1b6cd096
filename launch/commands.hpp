// Each subcommand registers itself on the CLI11 app; main() runs the one that was chosen.
// A command is registered only once it works end to end.
#pragma once

#include "config/schema.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pedagogy::launch {

// The action of the chosen subcommand; returns the process exit code.
using command_action = std::function<int()>;

// A job's config (file plus overrides), with logging set to its logging.level (unless
// --log-level or PEDAGOGY_LOG_LEVEL decided already) and, when cluster.torch_threads is set,
// LibTorch's intra-op threads.
config::config load_job_config(const std::string& path, const std::vector<std::string>& overrides);

// A CLI11 check for an option that names a file to write: a new path or an existing regular
// file. A device, FIFO or folder is refused before any work starts (exit 2), never written over.
CLI::Validator output_file();

// A JSON list of token ids from stdin, each an integer in [0, vocab); anything else (-1,
// 4294967400, 1.5, a nested list) is an input_error, where nlohmann's get<> would wrap or round it.
std::vector<int32_t> token_ids_of(const nlohmann::json& list, int64_t vocab);

// `pedagogy config show`; sets `action` when chosen.
void add_config_command(CLI::App& app, command_action& action);

// `pedagogy init-model`, `pedagogy tokenize` and `pedagogy chat-template`.
void add_model_commands(CLI::App& app, command_action& action);

// `pedagogy logits`: a model's logits for given ids, for comparisons with other implementations.
void add_logits_command(CLI::App& app, command_action& action);

// `pedagogy grade`.
void add_grade_command(CLI::App& app, command_action& action);

// `pedagogy make-problems`.
void add_problems_command(CLI::App& app, command_action& action);

// `pedagogy rollout`.
void add_rollout_command(CLI::App& app, command_action& action);

// `pedagogy eval`.
void add_eval_command(CLI::App& app, command_action& action);

// `pedagogy train`.
void add_train_command(CLI::App& app, command_action& action);

// `pedagogy sft`.
void add_sft_command(CLI::App& app, command_action& action);

// `pedagogy bench tokenize|forward|generate|classroom`.
void add_bench_command(CLI::App& app, command_action& action);

// `pedagogy inspect HOST:PORT` and `pedagogy plot RUN_DIR`.
void add_inspect_command(CLI::App& app, command_action& action);

// `pedagogy plot RUN [RUN ...]`: runs' metrics as charts in one SVG.
void add_plot_command(CLI::App& app, command_action& action);

// `pedagogy ranks`: the ranks of an mpirun/srun job, from MPI.
void add_ranks_command(CLI::App& app, command_action& action);

} // namespace pedagogy::launch
