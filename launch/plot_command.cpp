// `pedagogy plot RUN [RUN ...] [--out FILE.svg] [--smooth N]`: the metrics of one or several run
// folders (metrics.jsonl of `pedagogy train`, sft_metrics.jsonl of `pedagogy sft`), finished or
// still running, as one SVG of small charts with one line per run.
#include "inspect/plot.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>

namespace pedagogy::launch {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct plot_options {
  std::vector<std::string> runs; // run folders
  std::string out;               // the picture; default RUN/metrics.svg for one run
  int smooth = 0;                // moving average over N points; 0 = off
};

// A chart: the metric's key in the JSONL records, its title, and whether it is a rate in [0, 1].
struct metric {
  const char* key;
  const char* title;
  bool rate;
};

const std::vector<metric> train_charts = {{"reward", "reward", false},
                                          {"solve_rate", "solve rate", true},
                                          {"rejected", "rejected", true},
                                          {"kl", "KL to reference", false},
                                          {"loss", "loss", false},
                                          {"grad_norm", "gradient norm", false},
                                          {"learning_rate", "learning rate", false},
                                          {"step_s", "step time (s)", false}};

// jobs/sft_job.cpp writes a record per step and one per validation ("val_loss", at step 0 too).
const std::vector<metric> sft_charts = {{"loss", "loss", false},
                                        {"val_loss", "val loss", false},
                                        {"learning_rate", "learning rate", false},
                                        {"grad_norm", "gradient norm", false}};

const char* const run_hint = "give the run folder of `pedagogy train` or `pedagogy sft` (its "
                             "logging.run_dir)";

// `line` with the bare NaN, Infinity and -Infinity that Python's json module writes (JSON has no
// such numbers) turned into null, so that such a point is skipped instead of the whole line.
std::string non_finite_as_null(const std::string& line) {
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < line.size())
        out += line[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    bool replaced = false;
    for (const char* word : {"-Infinity", "Infinity", "-NaN", "NaN"}) {
      const std::string_view w(word);
      if (line.compare(i, w.size(), w) == 0) {
        out += "null";
        i += w.size() - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced)
      out += c;
  }
  return out;
}

// The records of one metrics file. A last line still being written by a running job is left
// out; any other line that is not a JSON object is an input_error naming file:line.
std::vector<json> read_records(const fs::path& path) {
  files::reader in(path, run_hint);
  std::vector<json> records;
  std::string line;
  bool whole = true;
  for (int64_t number = 1; in.next_line(line, &whole); ++number) {
    if (line.empty())
      continue;
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded())
      j = json::parse(non_finite_as_null(line), nullptr, false);
    if (!j.is_object()) {
      if (!whole)
        break;
      throw input_error(fmt::format("{}:{}", path.string(), number), "not a JSON object",
                        "the file is pedagogy's metrics, one JSON object per line");
    }
    records.push_back(std::move(j));
  }
  return records;
}

bool present(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

struct run {
  fs::path dir;
  std::string name;        // in the legend
  std::vector<json> train; // metrics.jsonl
  std::vector<json> sft;   // sft_metrics.jsonl
  bool has_train = false, has_sft = false;
};

run read_run(const std::string& dir) {
  run r;
  r.dir = dir;
  if (!present(r.dir))
    throw input_error(dir, "no such run folder", run_hint);
  if (!fs::is_directory(r.dir))
    throw input_error(dir, "is not a folder", run_hint);
  r.has_train = present(r.dir / "metrics.jsonl");
  r.has_sft = present(r.dir / "sft_metrics.jsonl");
  if (!r.has_train && !r.has_sft)
    throw input_error(dir,
                      "holds neither metrics.jsonl (pedagogy train) nor sft_metrics.jsonl "
                      "(pedagogy sft)",
                      run_hint);
  if (r.has_train)
    r.train = read_records(r.dir / "metrics.jsonl");
  if (r.has_sft)
    r.sft = read_records(r.dir / "sft_metrics.jsonl");
  return r;
}

// The path as a person reads it: "runs/a/" -> "runs/a", "." -> the folder's absolute path.
fs::path shown(const fs::path& dir) {
  auto p = dir.lexically_normal();
  if (!p.empty() && p.filename().empty())
    p = p.parent_path();
  if (p.empty() || p.filename() == "." || p.filename() == "..")
    return shown(fs::absolute(dir));
  return p;
}

// Each run's legend name: its folder's name, or the path it was given where two share a name.
void name_runs(std::vector<run>& runs) {
  std::set<fs::path> seen;
  for (const auto& r : runs) {
    std::error_code ec;
    const auto canonical = fs::weakly_canonical(fs::absolute(r.dir), ec);
    if (!seen.insert(ec ? r.dir : canonical).second)
      throw input_error(r.dir.string(), "is given twice", "name each run folder once");
  }
  std::vector<std::string> bases;
  for (const auto& r : runs)
    bases.push_back(shown(r.dir).filename().string());
  for (size_t i = 0; i < runs.size(); ++i) {
    const bool shared = std::count(bases.begin(), bases.end(), bases[i]) > 1;
    runs[i].name = shared || bases[i].empty() ? shown(runs[i].dir).string() : bases[i];
  }
}

std::string steps_text(size_t n) {
  return fmt::format("{} step{}", n, n == 1 ? "" : "s");
}

// The steps a run's file records: records with a loss (SFT validation records have none).
size_t steps_of(const std::vector<json>& records) {
  return static_cast<size_t>(std::count_if(records.begin(), records.end(),
                                           [](const json& j) { return j.contains("loss"); }));
}

std::vector<plot::chart> charts_of(const std::vector<run>& runs, const std::vector<metric>& wanted,
                                   std::vector<json> run::*records, bool run::*has,
                                   const std::string& prefix) {
  std::vector<plot::chart> charts;
  for (const auto& m : wanted) {
    plot::chart c{prefix + m.title, {}, std::nullopt};
    if (m.rate)
      c.range = std::make_pair(0.0, 1.0);
    for (const auto& r : runs) {
      if (!(r.*has)) // a train run has no SFT charts, and the other way round
        continue;
      plot::series s{r.name, {}};
      for (const auto& j : r.*records) {
        const auto step = j.find("step");
        const auto value = j.find(m.key);
        if (step != j.end() && step->is_number() && value != j.end() && value->is_number())
          s.points.emplace_back(step->get<double>(), value->get<double>());
      }
      // A resumed run's file is in step order already; sorting keeps the line going forward
      // whatever happened to the file.
      std::stable_sort(s.points.begin(), s.points.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      c.lines.push_back(std::move(s));
    }
    charts.push_back(std::move(c));
  }
  return charts;
}

int plot_runs(const plot_options& opts) {
  if (opts.runs.size() > 1 && opts.out.empty())
    throw input_error("--out",
                      fmt::format("{} runs need one picture to draw them in", opts.runs.size()),
                      "name it: --out compare.svg (only a single run has a default, "
                      "RUN/metrics.svg)");
  const fs::path out =
    opts.out.empty() ? fs::path(opts.runs.front()) / "metrics.svg" : fs::path(opts.out);
  if (out.extension() != ".svg")
    throw input_error("--out", fmt::format("'{}' is not an .svg file", opts.out),
                      out.extension() == ".png"
                        ? "pedagogy writes SVG (every browser shows it); for a PNG, convert it "
                          "(rsvg-convert run.svg -o run.png) or screenshot the live page"
                        : "name the picture FILE.svg");
  std::vector<run> runs;
  for (const auto& dir : opts.runs)
    runs.push_back(read_run(dir));
  name_runs(runs);

  size_t train_steps = 0, sft_steps = 0;
  bool any_train = false, any_sft = false;
  for (const auto& r : runs) {
    train_steps += r.train.size();
    sft_steps += steps_of(r.sft);
    any_train = any_train || r.has_train;
    any_sft = any_sft || r.has_sft;
  }
  if (train_steps + sft_steps == 0)
    throw input_error(
      runs.size() == 1
        ? (runs[0].dir / (any_train ? "metrics.jsonl" : "sft_metrics.jsonl")).string()
        : fmt::format("{} run folders", runs.size()),
      "no finished step yet", "plot again once a step is done");

  // Train runs and SFT runs in one picture: the train charts, then the SFT charts, named so.
  std::vector<plot::chart> charts;
  if (any_train)
    charts = charts_of(runs, train_charts, &run::train, &run::has_train, "");
  if (any_sft) {
    auto more = charts_of(runs, sft_charts, &run::sft, &run::has_sft, any_train ? "SFT " : "");
    charts.insert(charts.end(), more.begin(), more.end());
  }

  std::string heading;
  if (runs.size() == 1) {
    std::vector<std::string> counts;
    if (any_train)
      counts.push_back(steps_text(train_steps));
    if (any_sft)
      counts.push_back("SFT " + steps_text(sft_steps));
    heading = fmt::format("{}: {}", shown(runs[0].dir).string(), fmt::join(counts, ", "));
  } else {
    heading = fmt::format("{} {}runs", runs.size(),
                          any_train && any_sft ? ""
                          : any_train          ? "train "
                                               : "SFT ");
  }
  if (opts.smooth > 1)
    heading += fmt::format(" (lines: mean of the last {} points)", opts.smooth);

  plot::options look;
  look.smooth = opts.smooth;
  files::write_atomically(out, plot::svg(heading, charts, look));
  std::vector<std::string> said;
  for (const auto& r : runs)
    said.push_back(fmt::format("{}: {}", r.name, steps_text(r.train.size() + steps_of(r.sft))));
  std::cout << fmt::format("wrote {} ({})\n", out.string(), fmt::join(said, "; "));
  return static_cast<int>(exit_code::ok);
}

} // namespace

void add_plot_command(CLI::App& app, command_action& action) {
  auto opts = std::make_shared<plot_options>();
  auto* cmd = app.add_subcommand(
    "plot", "Draw the metrics of train or sft runs (one, or several overlaid) as an SVG");
  cmd
    ->add_option("runs", opts->runs,
                 "Run folders (their metrics.jsonl and/or sft_metrics.jsonl); several are "
                 "overlaid, one colour each, named by folder in the legend")
    ->required()
    ->type_name("RUN_DIR");
  cmd
    ->add_option("--out,-o", opts->out,
                 "The picture to write, FILE.svg (default for one run: RUN/metrics.svg; "
                 "required for several)")
    ->check(output_file());
  cmd
    ->add_option("--smooth", opts->smooth,
                 "Draw each line as the mean of its last N points over the lighter raw points "
                 "(default: off)")
    ->type_name("N")
    ->check(CLI::Range(1, 1000000));
  cmd->footer(
    "Where it writes: with one run and no --out, RUN/metrics.svg (a file of the run folder:\n"
    "`train --force` removes it, `--resume` keeps it); several runs need --out.\n"
    "A running job's folder can be plotted at any time; its unfinished last line is left out.\n"
    "Train runs (metrics.jsonl): reward, solve rate and rejected (on [0, 1]), KL to reference,\n"
    "loss, gradient norm, learning rate, step time. SFT runs (sft_metrics.jsonl): loss, val loss,\n"
    "learning rate, gradient norm. Train and SFT runs in one picture get both sets of charts\n"
    "(the SFT ones titled \"SFT ...\"), each run drawn in the charts its metrics fill.");
  cmd->callback([opts, &action] {
    action = [opts] {
      return plot_runs(*opts);
    };
  });
}

} // namespace pedagogy::launch
