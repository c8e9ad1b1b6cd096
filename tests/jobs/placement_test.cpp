// Which rank runs what: the placement a config asks for, refused (naming the knob) when it does
// not fit the world before anything loads.
#include "config/config.hpp"
#include "jobs/memory_plan.hpp"
#include "jobs/placement.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <filesystem>

using namespace pedagogy;
using namespace pedagogy::actors;

namespace {

config::config preset(const std::string& name, const std::vector<std::string>& overrides = {}) {
  return config::load_file(std::filesystem::path(PEDAGOGY_SOURCE_DIR) / "config" / name, overrides);
}

// The knob an input_error names ("" when the placement was accepted).
std::string refused_knob(const config::config& cfg, int world, bool cuda = false) {
  try {
    plan_placement(cfg, world, cuda);
  } catch (const input_error& e) {
    return e.where();
  }
  return "";
}

} // namespace

TEST_CASE("tiny-mpi puts trainer, tutor, learner and student on four ranks") {
  const auto p = plan_placement(preset("tiny-mpi.toml"), 4);
  CHECK(p.multi_rank);
  CHECK(p.channel == "mpi");
  CHECK(p.learners == std::vector<int>{2});
  CHECK(p.tutors == std::vector<int>{1});
  CHECK(p.students == std::vector<int>{3});
  CHECK(p.judges.empty()); // rule judge
  CHECK(p.weight_group() == std::vector<int>{2, 1});
  const std::vector<ranks::rank_info> world(4, ranks::rank_info{0, 4, 0, 4, "node-a", "cpu"});
  const auto table = placement_table(p, world);
  CHECK(table.find("learner (root)") != std::string::npos);
  CHECK(table.find("trainer, conversations") != std::string::npos);
  CHECK(table.find("node-a") != std::string::npos);
}

TEST_CASE("local mode runs everything on rank 0 with the local channel") {
  const auto p = plan_placement(preset("tiny.toml"), 1);
  CHECK_FALSE(p.multi_rank);
  CHECK(p.channel == "local");
  CHECK(p.weight_group() == std::vector<int>{0});
  CHECK(p.roles_of(0).size() == 4); // trainer, learner (root), tutor, student
}

TEST_CASE("a placement beyond the world size is refused naming the knob") {
  CHECK(refused_knob(preset("tiny-mpi.toml"), 2) == "cluster.learner_ranks");
  CHECK(refused_knob(preset("tiny-mpi.toml", {"cluster.learner_ranks=[1]"}), 3) == "student.ranks");
  CHECK(refused_knob(preset("tiny-mpi.toml", {"tutor.ranks=[7]"}), 4) == "tutor.ranks");
  CHECK(refused_knob(preset("tiny-mpi.toml"), 4) == "");
}

TEST_CASE("a rank with nothing to do is refused") {
  CHECK(refused_knob(preset("tiny-mpi.toml"), 5) == "cluster.learner_ranks");
}

TEST_CASE("a role twice on one rank is refused when the config loads") {
  try {
    preset("tiny-mpi.toml", {"tutor.ranks=[1, 1]", "tutor.replicas=2"});
    FAIL("accepted a tutor twice on rank 1");
  } catch (const input_error& e) {
    CHECK(std::string(e.what()).find("tutor.ranks") != std::string::npos);
  }
}

TEST_CASE("replicas must match their ranks") {
  CHECK(refused_knob(preset("tiny-mpi.toml", {"tutor.replicas=2"}), 4) == "tutor.replicas");
  CHECK(refused_knob(preset("tiny.toml", {"cluster.mode=\"mpi\"", "tutor.replicas=2"}), 1) ==
        "tutor.replicas");
}

TEST_CASE("ranks and data-parallel learners need several processes") {
  CHECK(refused_knob(preset("tiny.toml", {"tutor.ranks=[0]"}), 1) == "tutor.ranks");
  CHECK(refused_knob(preset("tiny.toml", {"cluster.learner_ranks=[0, 1]"}), 1) ==
        "cluster.learner_ranks");
  CHECK(refused_knob(preset("tiny.toml"), 4) == "cluster.mode");
  CHECK(refused_knob(preset("tiny.toml", {"cluster.weight_channel=\"mpi\""}), 1) ==
        "cluster.weight_channel");
}

TEST_CASE(
  "the weight channel across ranks is mpi by default, nccl on GPUs when asked, never local") {
  CHECK(plan_placement(preset("tiny-mpi.toml"), 4).channel == "mpi");
  CHECK(plan_placement(preset("tiny-mpi.toml", {"tutor.device=\"auto\""}), 4, true).channel ==
        "mpi");
  CHECK(
    plan_placement(preset("tiny-mpi.toml", {"cluster.weight_channel=\"nccl\""}), 4, true).channel ==
    "nccl");
  CHECK(refused_knob(preset("tiny-mpi.toml", {"cluster.weight_channel=\"local\""}), 4) ==
        "cluster.weight_channel");
  CHECK(refused_knob(preset("tiny-mpi.toml", {"cluster.weight_channel=\"nccl\""}), 4) ==
        "cluster.weight_channel");
  // A tutor on the learner root's own rank needs no broadcast to reach it.
  const auto p = plan_placement(preset("tiny-mpi.toml", {"tutor.ranks=[2]", "student.ranks=[1]",
                                                         "cluster.learner_ranks=[2, 3]"}),
                                4);
  CHECK(p.weight_group() == std::vector<int>{2});
}

TEST_CASE("a frozen role on an HTTP endpoint has no ranks") {
  CHECK(refused_knob(preset("tiny-mpi.toml", {"student.backend=\"openai\"", "student.init=\"\"",
                                              "student.openai.base_url=\"http://127.0.0.1:9/v1\""}),
                     4) == "student.ranks");
}

namespace {

// The 7B preset with the published shapes of its three models (tests/data/shapes).
config::config paper_run(std::vector<std::string> overrides = {}) {
  const auto shapes = std::filesystem::path(PEDAGOGY_SOURCE_DIR) / "tests/data/shapes";
  overrides.insert(overrides.begin(),
                   {fmt::format("tutor.model={}", (shapes / "qwen2.5-7b-instruct").string()),
                    fmt::format("student.model={}", (shapes / "llama-3.1-8b-instruct").string()),
                    fmt::format("judge.model={}", (shapes / "qwen2.5-14b-instruct").string())});
  return preset("qwen2.5-7b.toml", overrides);
}

memory_plan plan_of(const config::config& cfg, int world) {
  const double capacity = cfg.cluster.device_memory_gib * 1024.0 * 1024.0 * 1024.0;
  return plan_memory(
    cfg, plan_placement(cfg, world, true), shapes_from_config(cfg), [&](int) { return capacity; },
    true);
}

double gib_of(const rank_memory& r) {
  return r.total() / (1024.0 * 1024.0 * 1024.0);
}

double item(const rank_memory& r, const std::string& starts_with) {
  for (const auto& i : r.items)
    if (i.what.rfind(starts_with, 0) == 0)
      return i.bytes;
  FAIL("no item ", starts_with);
  return 0;
}

} // namespace

TEST_CASE("the 7B preset's learners need more than a 79 GiB GPU with float32 gradients, and are "
          "refused before anything loads") {
  // Gradients are summed over micro-batches in float32 (Megatron's main_grad): 4 bytes a
  // parameter, which puts each learner about 13 GiB past an 80 GB GPU until gradients are
  // sharded too (ZeRO-2) or the AdamW state shrinks (8-bit, as the reference's).
  const auto cfg = paper_run();
  const auto plan = plan_of(cfg, 8);
  MESSAGE(plan.table());
  REQUIRE(plan.ranks.size() == 8);
  CHECK_FALSE(plan.fits());
  for (int r = 0; r < 8; ++r) {
    CAPTURE(r);
    const auto& rank = plan.ranks[static_cast<size_t>(r)];
    CHECK(gib_of(rank) > 30.0);     // every rank holds a model
    CHECK(rank.fits() == (r >= 4)); // the generators fit, the learners do not
  }
  // The tutor's 7.6 B parameters: bf16 weights, float32 gradients, a quarter of 12 bytes each.
  const auto& learner = plan.ranks[0];
  const double p = 7'615'616'512.0; // Qwen2.5-7B: embeddings, 28 layers, lm_head
  CHECK(item(learner, "learner weights") == doctest::Approx(2 * p));
  CHECK(item(learner, "learner gradients") == doctest::Approx(4 * p));
  CHECK(item(learner, "AdamW moments") == doctest::Approx(12 * p / 4));
  try {
    check_memory_plan(plan);
    FAIL("a plan that does not fit was accepted");
  } catch (const input_error& e) {
    CHECK(e.where() == "cluster.device_memory_gib");
    CHECK(std::string(e.what()).find("rank 0 needs") != std::string::npos);
  }
}

TEST_CASE("on 8 GPUs of 139 GiB the 7B preset fits, and only with ZeRO-1 and layer "
          "checkpointing") {
  const std::string h200 = "cluster.device_memory_gib=139";
  const auto plan = plan_of(paper_run({h200}), 8);
  CHECK(plan.fits());
  CHECK_NOTHROW(check_memory_plan(plan));
  for (const auto& change :
       {"train.shard_optimizer=false", "train.activation_checkpointing=\"off\""}) {
    CAPTURE(change);
    const auto without = plan_of(paper_run({h200, change}), 8);
    CHECK_FALSE(without.fits());
    CHECK_FALSE(without.ranks[0].fits());
  }
  // A KV budget beyond the tutor's GPU is refused on the tutor's ranks only.
  const auto greedy = plan_of(paper_run({h200, "tutor.kv_cache_tokens=3000000"}), 8);
  CHECK_FALSE(greedy.ranks[4].fits());
  CHECK(greedy.ranks[0].fits());
  CHECK(greedy.ranks[6].fits());
}

TEST_CASE("a CPU plan is printed but not checked") {
  const auto cfg = preset("tiny.toml");
  const auto plan = plan_memory(
    cfg, plan_placement(cfg, 1), shapes_from_config(cfg), [](int) { return 0.0; }, false);
  REQUIRE(plan.ranks.size() == 1);
  CHECK(plan.fits());
  CHECK(plan.table().find("trainer") != std::string::npos);
  // fp32 on a CPU: weights 4 bytes a parameter, moments 8, no masters.
  const auto& r = plan.ranks[0];
  const double weights = item(r, "learner weights");
  CHECK(weights > 0);
  CHECK(item(r, "AdamW moments") == doctest::Approx(2 * weights));
}
