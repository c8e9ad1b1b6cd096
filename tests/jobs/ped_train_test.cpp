// Pedagogical RL's learning test (setting B, the solver), in one process on CPU with fixed seeds:
// on the recall task (bench/ped_task.hpp) the policy's own samples almost never succeed (about one
// in 900), so plain GRPO's reward stays flat at 0, while in `rescue` mode the ped_teacher (the
// same model with the answer in view) answers the groups that all failed, the ped_learner imitates
// its kept trajectories, and the policy's own reward rises. And `rounds`' mechanics: the
// ped_teacher learns every step, the policy only at a round's end, both are checkpointed.
#include "bench/ped_task.hpp"
#include "config/config.hpp"
#include "jobs/train_local.hpp"
#include "models/weights/safetensors.hpp"
#include "tests/support/torch_doctest.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

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
  // One sequence per forward pass: which dialogs share a batch depends on timing, and batched
  // kernels round differently, so batched runs drift apart after a few steps (rescue's last-16
  // mean ranged 0.037-0.061 over repeated runs of one seed). Unbatched, every run is the same.
  cfg.tutor.max_batch_sequences = 1;
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
  MESSAGE("copy skill: loss per token " << task().copy_loss << " after " << task().attempts
                                        << " initialisation(s); last warm-up loss "
                                        << task().warmup_loss);
  REQUIRE(task().copy_loss < 0.1); // else the ped_teacher cannot succeed and nothing is tested
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
  // Printed on success too (ctest -V), so that the spread of repeated runs can be read off.
  std::cout << "recall: off, last 16 steps " << off_last << "; rescue, first 8 steps "
            << rescue_first << ", last 16 " << rescue_last << std::endl;
  // Margins from measured spreads. Off never solved a problem in any run (0.0). Rescue's first 8
  // steps give 0.016 and its last 16 0.037-0.061 over repeated batched runs (the unbatched run
  // here: 0.037); over seeds 11-18 with 96 steps its gain over its start was 0.021-0.066. Hence:
  // off below 3%, rescue's end at least 2.5 points above off and 1 point above its own start.
  CHECK(off_last < 0.03);
  CHECK(rescue_last > off_last + 0.025);
  CHECK(rescue_last > rescue_first + 0.01);
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

TEST_CASE("rounds: the ped_teacher learns every step, the policy only from each round's corpus") {
  const auto dir = fs::temp_directory_path() / "pedagogy_ped_rounds";
  auto cfg = recall_config(dir, config::ped_mode::rounds);
  cfg.train.max_steps = 8; // two rounds of ped.teacher_steps = 4
  const auto m = train(cfg);
  REQUIRE(m.size() == 8);
  for (size_t i = 0; i < m.size(); ++i) {
    CAPTURE(i);
    const auto& p = m[i]["ped"];
    const bool round_end = i % 4 == 3;
    // The ped_teacher takes a GRPO step every step; the policy takes mu = 2 optimizer steps at
    // each round's end only, on the corpus the trained ped_teacher sampled afresh.
    CHECK(p["teacher_grad_norm"].get<double>() > 0);
    CHECK(m[i]["optimizer_steps"].get<int64_t>() == 2 * static_cast<int64_t>((i + 1) / 4));
    CHECK(p["rollouts"].get<int64_t>() == (round_end ? 64 : 32));
    CHECK((p["imitated_sequences"].get<int64_t>() > 0) == round_end);
    if (round_end)
      CHECK(p["corpus_kept"].get<int64_t>() == p["imitated_sequences"].get<int64_t>());
  }
  // The checkpoint holds both: the policy (what is deployed) and the ped_teacher, apart.
  const auto checkpoint = dir / "checkpoints" / "step-000008";
  const auto policy = models::safetensors_file::open(checkpoint / "model.safetensors");
  const auto teacher =
    models::safetensors_file::open(checkpoint / "ped_teacher" / "model.safetensors");
  CHECK(fs::exists(checkpoint / "ped_teacher" / "optimizer.safetensors"));
  const auto start = models::safetensors_file::open(task().model / "model.safetensors");
  const std::string name = "model.embed_tokens.weight";
  CHECK_FALSE(at::equal(policy.tensor(name), teacher.tensor(name)));
  CHECK_FALSE(at::equal(teacher.tensor(name), start.tensor(name)));
  fs::remove_all(dir);
}
