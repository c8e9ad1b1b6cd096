// `pedagogy make-problems`: writes a generated problem set (see classroom/problem_generator.hpp).
// The bundled data/ files are its output:
//   pedagogy make-problems --seed 1 --count 400 --out data/problems_train.jsonl
//   pedagogy make-problems --seed 2 --count 100 --exclude data/problems_train.jsonl
//     --out data/problems_test.jsonl            (one command line)
#include "classroom/problem_generator.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

namespace pedagogy::launch {

namespace {

struct make_problems_options {
  uint64_t seed = 1;
  int64_t count = 400;
  std::string out;
  std::vector<std::string> exclude;
};

int make_problems(const make_problems_options& opts) {
  std::vector<classroom::problem> excluded;
  for (const auto& path : opts.exclude) {
    auto more = classroom::load_problems(path, {});
    excluded.insert(excluded.end(), more.begin(), more.end());
  }
  const auto problems = classroom::generate_problems(opts.seed, opts.count, excluded);
  // Replaced whole and checked, so an existing set is never left half-written.
  const std::filesystem::path out = opts.out;
  const auto folder = out.parent_path().empty() ? std::filesystem::path(".") : out.parent_path();
  if (!std::filesystem::is_directory(folder))
    throw input_error(out.string(), "cannot write the problem set: no such folder",
                      "create the folder first, or choose another --out");
  std::string text;
  for (const auto& p : problems)
    text += classroom::to_jsonl(p) + '\n';
  files::write_atomically(out, text);
  std::cout << fmt::format("wrote {} problems to {} (seed {})\n", problems.size(), out.string(),
                           opts.seed);
  return static_cast<int>(exit_code::ok);
}

} // namespace

void add_problems_command(CLI::App& app, command_action& action) {
  auto opts = std::make_shared<make_problems_options>();
  auto* cmd = app.add_subcommand(
    "make-problems", "Write a generated set of arithmetic and algebra word problems (JSONL)");
  cmd->add_option("--seed", opts->seed, "Generator seed")->capture_default_str();
  // The templates have about 350,000 distinct instances, and drawing near all of them takes
  // minutes (each new one gets rarer): a set of more than this many is not what they are for.
  constexpr int64_t max_count = 100'000;
  cmd->add_option("--count", opts->count, "Number of problems")
    ->check(CLI::Range(int64_t{1}, max_count))
    ->capture_default_str();
  cmd->add_option("--out,-o", opts->out, "Output JSONL")->required()->check(output_file());
  cmd->add_option("--exclude", opts->exclude, "Problem sets whose problems must not repeat");
  cmd->callback([opts, &action] {
    action = [opts] {
      return make_problems(*opts);
    };
  });
}

} // namespace pedagogy::launch
