// Which rank runs what: the placement a config asks for, refused (naming the knob) when it does
// not fit the world before anything loads.
#include "actors/placement.hpp"
#include "config/config.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>

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
