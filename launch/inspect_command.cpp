// Looking at a running job: `pedagogy inspect HOST:PORT` (a live view of its inspector, like
// top; --once prints it once, --json prints /status for scripts).
#include "inspect/http_server.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

namespace pedagogy::launch {

namespace {

using nlohmann::json;

struct inspect_options {
  std::string address; // HOST:PORT
  bool once = false;
  bool as_json = false;
  std::string token;
  double interval_s = 1;
};

std::pair<std::string, int> split_address(const std::string& address) {
  const auto colon = address.rfind(':');
  const auto hint = "give the address the job printed, e.g. 127.0.0.1:8765";
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    throw input_error("HOST:PORT", fmt::format("'{}' is not HOST:PORT", address), hint);
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int port = 0;
  try {
    size_t used = 0;
    port = std::stoi(address.substr(colon + 1), &used);
    if (used != address.size() - colon - 1)
      port = -1;
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 1 || port > 65535)
    throw input_error("HOST:PORT", fmt::format("'{}' has no port number in 1..65535", address),
                      hint);
  return {host, port};
}

std::string bytes(int64_t n) {
  if (n < 0)
    return "-";
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int i = 0;
  while (v >= 1024 && i < 4) {
    v /= 1024;
    ++i;
  }
  return i == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[i]);
}

// Columns padded to their widest cell.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i)
        width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i)
      line += fmt::format("{:<{}}", r[i], i + 1 == r.size() ? 0 : width[i] + 2);
    while (!line.empty() && line.back() == ' ')
      line.pop_back();
    out += line + '\n';
  }
  return out;
}

std::string number_or(const json& j, const char* key, const char* format = "{:.3f}") {
  if (!j.contains(key) || !j[key].is_number())
    return "-";
  return fmt::format(fmt::runtime(format), j[key].get<double>());
}

// The status as a person reads it: the run, every actor, the latest step's metrics.
std::string render(const json& st, const std::string& address) {
  const auto& run = st["run"];
  std::string out =
    fmt::format("pedagogy {}  run {}  step {} of {} ({} done)  dialogs {}/{} this step  weights "
                "v{}  up {:.0f} s\n",
                address, run["state"].get<std::string>(),
                std::min(run["step"].get<int64_t>(), run["total_steps"].get<int64_t>()),
                run["total_steps"].get<int64_t>(), run["completed_steps"].get<int64_t>(),
                run["dialogs_done"].get<int64_t>(), run["dialogs_total"].get<int64_t>(),
                run["weights_version"].get<int64_t>(), run["uptime_s"].get<double>());
  out += fmt::format("run folder {}\n\n", run["run_dir"].get<std::string>());
  std::vector<std::vector<std::string>> rows = {
    {"ROLE", "#", "RANK", "NODE", "DEVICE", "STATE", "QUEUE", "IN FLIGHT", "TOK/S", "KV CACHE",
     "WEIGHTS", "HOST MEM", "DEV MEM", "LAST", "ERROR"}};
  for (const auto& a : st["actors"]) {
    const bool generator = a.contains("kv_cache_capacity");
    rows.push_back(
      {a["role"].get<std::string>(), std::to_string(a["index"].get<int64_t>()),
       std::to_string(a["rank"].get<int64_t>()), a["node"].get<std::string>(),
       a["device"].get<std::string>(), a["state"].get<std::string>(),
       std::to_string(a["queue"].get<int64_t>()), std::to_string(a["in_flight"].get<int64_t>()),
       fmt::format("{:.1f}", a["tokens_per_s"].get<double>()),
       generator ? fmt::format("{}/{}", a["kv_cache_tokens"].get<int64_t>(),
                               a["kv_cache_capacity"].get<int64_t>())
                 : "-",
       fmt::format("v{}", a["weights_version"].get<int64_t>()),
       bytes(a["host_memory"].get<int64_t>()), bytes(a["device_memory"].get<int64_t>()),
       fmt::format("{:.1f}s ago", a["last_report_s"].get<double>()),
       a["last_error"].get<std::string>().substr(0, 60)});
  }
  out += table(rows);
  const auto& d = st["dialogs"];
  out +=
    fmt::format("\ndialogs: {} in flight, {} finished ({} failed)\n", d["in_flight"].get<int64_t>(),
                d["finished"].get<int64_t>(), d["failed"].get<int64_t>());
  const auto& last = st["latest_step"];
  if (last.is_object())
    out += fmt::format("step {}: reward {}  solve rate {}  rejected {}  kl {}  loss {}  "
                       "step {} s (rollout {} s, learn {} s, sync {} s)\n",
                       last.value("step", int64_t{0}), number_or(last, "reward"),
                       number_or(last, "solve_rate"), number_or(last, "rejected"),
                       number_or(last, "kl", "{:.5f}"), number_or(last, "loss", "{:.4f}"),
                       number_or(last, "step_s", "{:.1f}"), number_or(last, "rollout_s", "{:.1f}"),
                       number_or(last, "learn_s", "{:.1f}"), number_or(last, "sync_s", "{:.2f}"));
  else
    out += "no step has finished yet\n";
  return out;
}

json fetch_status(const std::string& host, int port, const std::string& token) {
  const auto body = http::get(host, port, "/status", token);
  auto st = json::parse(body, nullptr, false);
  if (!st.is_object() || !st.contains("run") || !st.contains("actors"))
    throw std::runtime_error(fmt::format("{}:{}/status is not a pedagogy inspector's answer "
                                         "(hint: is that the port the job printed?)",
                                         host, port));
  return st;
}

int inspect(const inspect_options& opts) {
  const auto [host, port] = split_address(opts.address);
  std::string token = opts.token;
  if (const char* env = std::getenv("PEDAGOGY_INSPECT_TOKEN"); token.empty() && env != nullptr)
    token = env;
  if (opts.once || opts.as_json) {
    const auto st = fetch_status(host, port, token);
    std::cout << (opts.as_json ? st.dump(2, ' ', false, json::error_handler_t::replace) + "\n"
                               : render(st, opts.address))
              << std::flush;
    return static_cast<int>(exit_code::ok);
  }
  // Live: redraw every interval until Ctrl-C; a job that goes away is said, and retried.
  for (;;) {
    std::string screen;
    try {
      screen = render(fetch_status(host, port, token), opts.address);
    } catch (const std::exception& e) {
      screen = fmt::format("pedagogy {}: {}\n(retrying every {} s; Ctrl-C to quit)\n", opts.address,
                           e.what(), opts.interval_s);
    }
    std::cout << "\x1b[H\x1b[2J" << screen << std::flush;
    std::this_thread::sleep_for(std::chrono::duration<double>(opts.interval_s));
  }
}

} // namespace

void add_inspect_command(CLI::App& app, command_action& action) {
  auto opts = std::make_shared<inspect_options>();
  auto* cmd = app.add_subcommand(
    "inspect", "Watch a running job: its actors, throughput, step progress and latest metrics");
  cmd->add_option("address", opts->address, "HOST:PORT the job printed (inspect.host/port)")
    ->required();
  cmd->add_flag("--once", opts->once, "Print the status once and exit");
  cmd->add_flag("--json", opts->as_json, "Print the status as JSON (/status) and exit");
  cmd->add_option("--token", opts->token,
                  "The inspector's token (default: PEDAGOGY_INSPECT_TOKEN from the environment)");
  cmd->add_option("--interval", opts->interval_s, "Seconds between refreshes of the live view")
    ->check(CLI::Range(0.1, 3600.0))
    ->capture_default_str();
  cmd->callback([opts, &action] {
    action = [opts] {
      return inspect(*opts);
    };
  });
}

} // namespace pedagogy::launch
