// `pedagogy bench inspect`: what live inspection costs a training step. The tiny preset's
// pipeline runs alternately without and with the inspector (every actor asked for its status
// once per heartbeat, the trainer and conversations reporting theirs), and once more with
// reports far more often; the ratio of mean step times is the overhead, and the stressed run
// prices one status report, so the overhead at the default heartbeat is also estimated without
// the noise of two separate runs.
#include "bench/bench.hpp"
#include "bench/tiny_run.hpp"
#include "runtime/errors.hpp"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <thread>

namespace pedagogy::bench {

namespace {

double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct timed_run {
  std::vector<double> step_s; // the first (warm-up) step left out
  double cpu_s = 0;           // the process's CPU time over the whole run
  double mean() const {
    double sum = 0;
    for (double s : step_s)
      sum += s;
    return step_s.empty() ? 0 : sum / static_cast<double>(step_s.size());
  }
};

} // namespace

figures inspect(const inspect_options& options) {
  if (options.steps < 2)
    throw input_error("--steps", "needs at least 2 steps", "the first step only warms up");
  const int threads =
    options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  auto run = [&](bool inspected, int64_t heartbeat_ms) {
    timed_run out;
    const double cpu = cpu_seconds();
    const auto steps = tiny_steps(options.config, options.steps, [&](config::config& cfg) {
      cfg.inspect.enabled = inspected;
      cfg.inspect.port = 0;
      cfg.inspect.linger_s = 0;
      cfg.inspect.heartbeat_ms = heartbeat_ms;
      cfg.inspect.unresponsive_s = std::max(10.0, static_cast<double>(heartbeat_ms) / 100.0);
      cfg.cluster.torch_threads = threads;
    });
    out.cpu_s = cpu_seconds() - cpu;
    for (size_t i = 1; i < steps.size(); ++i)
      out.step_s.push_back(steps[i]["step_s"].get<double>());
    return out;
  };
  // Every run does the same work (same seeds): step i without vs step i with is a fair pair.
  std::vector<double> ratios;
  double without = 0, with = 0, cpu_without = 0, cpu_with = 0;
  for (int64_t r = 0; r < options.rounds; ++r) {
    const auto a = run(false, 1000);
    const auto b = run(true, 1000);
    for (size_t i = 0; i < std::min(a.step_s.size(), b.step_s.size()); ++i)
      ratios.push_back(b.step_s[i] / a.step_s[i]);
    without += a.mean() / static_cast<double>(options.rounds);
    with += b.mean() / static_cast<double>(options.rounds);
    cpu_without += a.cpu_s;
    cpu_with += b.cpu_s;
  }
  const auto stressed = run(true, options.stress_heartbeat_ms);
  // Reports per second: the watched actors (tutor, student, learner) asked each heartbeat, and
  // the trainer's own; conversations report per call either way.
  const double watched = 4;
  const double stress_rate = watched * 1000.0 / static_cast<double>(options.stress_heartbeat_ms);
  const double per_report = (stressed.cpu_s / static_cast<double>(options.steps) -
                             cpu_without / static_cast<double>(options.rounds * options.steps)) /
                            (stressed.mean() * stress_rate);
  figures f;
  f.title = fmt::format("bench inspect: tiny preset, {} steps per run ({} timed), {} run(s) "
                        "each without and with the inspector, alternating, {} thread(s)",
                        options.steps, options.steps - 1, options.rounds, threads);
  f.add("step_seconds_without", without);
  f.add("step_seconds_with", with);
  f.add("with_over_without_median_of_steps", median(ratios));
  f.add("overhead_percent", (median(ratios) - 1) * 100);
  f.add("cpu_seconds_without", cpu_without / static_cast<double>(options.rounds));
  f.add("cpu_seconds_with", cpu_with / static_cast<double>(options.rounds));
  f.add("cpu_overhead_percent", (cpu_with / cpu_without - 1) * 100);
  f.add("stressed_heartbeat_ms", static_cast<double>(options.stress_heartbeat_ms));
  f.add("cpu_seconds_stressed", stressed.cpu_s);
  f.add("cpu_seconds_per_report", per_report);
  f.add("estimated_overhead_percent_at_1s", per_report * watched * 100);
  f.notes.push_back("overhead_percent: the median over steps of (step with) / (same step "
                    "without); a busy machine moves single steps by several percent either way. "
                    "estimated_overhead_percent_at_1s: the CPU time one report costs (priced by "
                    "the stressed run) times the reports of a second at the default heartbeat");
  return f;
}

} // namespace pedagogy::bench
