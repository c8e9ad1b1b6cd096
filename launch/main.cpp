// The `pedagogy` binary: parses the command line, sets up logging and runs one subcommand.
// Bad input ends with exit code 2 and a message naming the file, key and a hint; a failed job
// with exit code 1.
#include "config/config.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/versions.hpp"

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <malloc.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>

namespace {

constexpr const char* description =
  "pedagogy: train LLM tutors with multi-turn GRPO in a simulated classroom.\n"
  "A trainable tutor talks with a frozen student about a math problem; frozen judges reject\n"
  "dialogs that leak the answer or teach badly; the student's solve rate after the dialog,\n"
  "minus a penalty for rejections, is the reward.";

} // namespace

namespace pedagogy::launch {

config::config load_job_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto cfg = config::load_file(path, overrides);
  log::options options;
  options.levels = cfg.logging.level;
  log::setup(options);
  if (cfg.cluster.torch_threads > 0)
    at::set_num_threads(static_cast<int>(cfg.cluster.torch_threads));
  return cfg;
}

CLI::Validator output_file() {
  return CLI::Validator(
    [](std::string& path) -> std::string {
      if (path.empty())
        return "an empty path";
      try {
        files::require_regular_output(path);
      } catch (const input_error& e) {
        return fmt::format("{} (hint: {})", e.what(), e.hint());
      }
      return {};
    },
    "FILE");
}

// "train " for `pedagogy train ...`, "" before a subcommand was recognised.
std::string subcommand_of(const CLI::App& app) {
  std::string path;
  for (const CLI::App* at = &app; !at->get_subcommands().empty();) {
    at = at->get_subcommands().front();
    path += at->get_name() + " ";
  }
  return path;
}

// A filesystem error's message and exit code. A path the person gave that is not what it must be
// (a file where a folder goes, a link loop, no permission) is bad input; anything else (a full
// disk, an I/O error) a failure.
int report_filesystem_error(const std::filesystem::filesystem_error& e) {
  using std::errc;
  const auto code = e.code();
  const bool path_shaped = code == errc::not_a_directory || code == errc::is_a_directory ||
                           code == errc::no_such_file_or_directory ||
                           code == errc::too_many_symbolic_link_levels ||
                           code == errc::file_exists || code == errc::filename_too_long ||
                           code == errc::permission_denied || code == errc::read_only_file_system;
  std::cerr << "error: " << e.path1().string() << ": " << code.message() << "\n";
  if (path_shaped)
    std::cerr << "  hint: check that path (a folder where one is needed, a file where a file "
                 "is, and that you may write there)\n";
  log::flush();
  return static_cast<int>(path_shaped ? exit_code::bad_input : exit_code::failure);
}

// Every subcommand, each adding its flags and, when chosen, the action that runs it.
void add_commands(CLI::App& app, command_action& action) {
  add_config_command(app, action);
  add_model_commands(app, action);
  add_logits_command(app, action);
  add_grade_command(app, action);
  add_problems_command(app, action);
  add_rollout_command(app, action);
  add_train_command(app, action);
  add_sft_command(app, action);
  add_eval_command(app, action);
  add_bench_command(app, action);
  add_inspect_command(app, action);
  add_plot_command(app, action);
  add_ranks_command(app, action);
}

} // namespace pedagogy::launch

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // Autograd on long dialogs allocates and frees large buffers all the time; glibc's default
  // returns them to the system and page-faults them back each time (measured: the learner's
  // step took 1.7x longer). Keep freed memory in the process instead.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
  mallopt(M_TOP_PAD, 256 << 20);
#endif
  // A file that may not grow (RLIMIT_FSIZE) fails the write with EFBIG, which the job reports
  // naming the file, instead of killing the process without a word.
  std::signal(SIGXFSZ, SIG_IGN);
  using pedagogy::exit_code;
  CLI::App app{description, "pedagogy"};
  app.require_subcommand(1);
  app.add_flag_callback(
    "-V,--version",
    [] {
      std::cout << pedagogy::version_report();
      throw CLI::Success();
    },
    "Print the versions of pedagogy and its dependencies, then exit");
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "Log level, e.g. debug or \"info,engine=debug\" (beats PEDAGOGY_LOG_LEVEL and "
                 "logging.level)");

  pedagogy::launch::command_action action;
  pedagogy::launch::add_commands(app, action);

  try {
    app.parse(argc, argv);
    pedagogy::log::options log_options;
    if (!log_level.empty()) {
      pedagogy::log::validate_levels(log_level, "flag --log-level");
      log_options.levels = log_level;
      log_options.levels_are_final = true;
      // Through the environment, the flag also beats the level of a config a command reads
      // later (and reaches processes this one starts).
      setenv(pedagogy::log::level_env_var, log_level.c_str(), 1);
    }
    pedagogy::log::setup(log_options);
    return action ? action() : static_cast<int>(exit_code::ok);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) // --help, --version
      return app.exit(e);
    // The same shape as every other refusal, so that scripts and people find "error:".
    std::cerr << "error: " << e.what() << "\n  hint: `pedagogy "
              << pedagogy::launch::subcommand_of(app) << "--help` lists the flags and arguments\n";
    return static_cast<int>(exit_code::bad_input);
  } catch (const pedagogy::input_error& e) {
    std::cerr << pedagogy::describe(e) << '\n';
    return static_cast<int>(exit_code::bad_input);
  } catch (const std::filesystem::filesystem_error& e) {
    return pedagogy::launch::report_filesystem_error(e);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    pedagogy::log::flush();
    return static_cast<int>(exit_code::failure);
  }
}
