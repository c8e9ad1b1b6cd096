// `pedagogy ranks [--json]`: every rank of an mpirun/srun job as this binary sees it (rank, node,
// local rank, device), printed by rank 0; a check of the launcher before a long job starts.
#include "launch/commands.hpp"
#include "runtime/ranks.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace pedagogy::launch {

namespace {

int show_ranks(bool json) {
  const auto mine = ranks::this_process(/*force_mpi=*/true);
  const auto all = ranks::gather_on_root(mine);
  if (mine.rank != 0)
    return 0;
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : all)
      out.push_back({{"rank", r.rank},
                     {"world_size", r.world_size},
                     {"node", r.node},
                     {"local_rank", r.local_rank},
                     {"local_size", r.local_size},
                     {"device", r.device}});
    std::cout << out.dump() << '\n';
    return 0;
  }
  std::cout << fmt::format("{:>5}  {:<24}  {:>10}  {}\n", "rank", "node", "local rank", "device");
  for (const auto& r : all)
    std::cout << fmt::format("{:>5}  {:<24}  {:>10}  {}\n", r.rank, r.node,
                             fmt::format("{}/{}", r.local_rank, r.local_size), r.device);
  return 0;
}

} // namespace

void add_ranks_command(CLI::App& app, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
    "ranks", "Show every rank of an mpirun/srun job: node, local rank and device (from MPI)");
  cmd->add_flag("--json", *json, "One JSON array instead of a table");
  cmd->callback([json, &action] {
    action = [json] {
      return show_ranks(*json);
    };
  });
}

} // namespace pedagogy::launch
