// Pedagogical RL's learning test (setting B, the solver), in one process on CPU with fixed seeds:
// on the recall task (bench/ped_task.hpp) the policy's own samples almost never succeed (about one
// in 900), so plain GRPO's reward stays flat at 0, while in `rescue` mode the ped_teacher (the
// same model with the answer in view) answers the groups that all failed, the ped_learner imitates
// its kept trajectories, and the policy's own reward rises.
#include "actors/trainer.hpp"
#include "bench/ped_task.hpp"
#include "config/config.hpp"
#include "torch_doctest.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

using namespace pedagogy;
using namespace pedagogy::actors;
namespace fs = std::filesystem;

namespace {

const bench::recall_task& task() {
  static const auto made = [] {
    bench::recall_options o;
    o.source_templates = fs::path(PEDAGOGY_SOURCE_DIR) / "prompt_templates";
    return bench::make_recall_task(fs::temp_directory_path() / "pedagogy_ped_task", o);
  }();
  return made;
}

config::config recall_config(const fs::path& run_dir, config::ped_mode mode) {
  auto cfg = bench::recall_config(
    config::load_file(fs::path(PEDAGOGY_SOURCE_DIR) / "config/tiny.toml", {}), task(), mode, 4, 8);
  cfg.train.max_steps = 48;
  cfg.logging.run_dir = run_dir.string();
  cfg.checkpoint.every_steps = 0;
  cfg.checkpoint.keep_last = 1;
  return cfg;
}

std::vector<nlohmann::json> train(const config::config& cfg) {
  train_options o;
  o.force = true;
  o.make_student = bench::spawn_idle_student;
  REQUIRE(actors::train(cfg, config::to_toml(cfg), o) == 0);
  std::vector<nlohmann::json> out;
  std::ifstream in(fs::path(cfg.logging.run_dir) / "metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line));
  return out;
}

double mean_of(const std::vector<nlohmann::json>& m, size_t from, size_t to, const char* key) {
  double sum = 0;
  for (size_t i = from; i < to; ++i)
    sum += m[i][key].get<double>();
  return sum / static_cast<double>(to - from);
}

} // namespace

TEST_CASE("recall task: blind GRPO stays flat while rescue makes the policy's reward rise") {
  MESSAGE("copy skill's last cross-entropy per token " << task().warmup_loss);
  const auto dir = fs::temp_directory_path() / "pedagogy_ped_runs";
  const auto off = train(recall_config(dir / "off", config::ped_mode::off));
  const auto rescue = train(recall_config(dir / "rescue", config::ped_mode::rescue));
  REQUIRE(off.size() == 48);
  REQUIRE(rescue.size() == off.size());
  for (size_t i = 0; i < rescue.size(); i += 4)
    MESSAGE("step " << i << ": reward off " << off[i]["reward"] << ", rescue "
                    << rescue[i]["reward"] << " (ped_teacher success "
                    << rescue[i]["ped"]["teacher_success"] << ", kept "
                    << rescue[i]["ped"]["corpus_kept"] << ")");
  // Means over the first 8 and the last 16 steps (32 dialogs each step).
  const size_t n = off.size();
  const double off_last = mean_of(off, n - 16, n, "reward");
  const double rescue_first = mean_of(rescue, 0, 8, "reward");
  const double rescue_last = mean_of(rescue, n - 16, n, "reward");
  MESSAGE("mean reward: off, last 16 steps " << off_last << "; rescue, first 8 steps "
                                             << rescue_first << ", last 16 " << rescue_last);
  // The stated margins (over runs that differ only in seeds, rescue ended between 0.08 and 0.23,
  // off at most 0.02): plain GRPO stays below 3% correct, and rescue ends at least 5 points
  // above it and above its own start.
  CHECK(off_last < 0.03);
  CHECK(rescue_last > off_last + 0.05);
  CHECK(rescue_last > rescue_first + 0.05);
  // The ped_teacher did the rescuing: asked for most groups at first, it sees the answer and
  // often copies it; off mode never asks it.
  double groups = 0, asked = 0, succeeded = 0;
  for (size_t i = 0; i < 8; ++i) {
    const auto& p = rescue[i]["ped"];
    groups += p["rescued_groups"].get<double>();
    asked += p["teacher_dialogs"].get<double>();
    succeeded += p["teacher_dialogs"].get<double>() * p["teacher_success"].get<double>();
  }
  CHECK(groups >= 24); // of 8 steps x 4 groups
  CHECK(asked == groups * 8);
  CHECK(succeeded / asked > 0.3);
  CHECK_FALSE(off.front().contains("ped"));
  fs::remove_all(dir);
}
