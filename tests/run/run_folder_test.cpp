// What `--force` may delete in a run folder, the run lock, and checkpoint bookkeeping.
#include "run/checkpoints.hpp"
#include "run/run_folder.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

using namespace pedagogy;
using namespace pedagogy::actors;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir =
    fs::temp_directory_path() / ("pedagogy_run_folder_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void touch(const fs::path& path) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << "x\n";
}

// A checkpoint as the trainer writes one (marker first), left unfinished or finished.
fs::path our_checkpoint(const fs::path& dir, int64_t step, bool finished) {
  const auto tmp = begin_checkpoint(dir, step);
  touch(tmp / "model.safetensors");
  return finished ? finish_checkpoint(tmp, "{}\n") : tmp;
}

} // namespace

TEST_CASE("force deletes an earlier run's outputs and keeps the model folders inside") {
  const auto run = scratch("own");
  for (const char* file : {"metrics.jsonl", "dialogs.jsonl", "pedagogy.log", "config.toml"})
    touch(run / file);
  our_checkpoint(run / "checkpoints", 2, true);
  our_checkpoint(run / "checkpoints", 4, false);
  touch(run / "weights" / "tutor" / "model.safetensors");
  const run_layout layout{run, run / "checkpoints", {run / "weights" / "tutor", ""}};
  CHECK(foreign_entries(layout).empty());
  clear_run_outputs(layout);
  CHECK_FALSE(fs::exists(run / "metrics.jsonl"));
  CHECK_FALSE(fs::exists(run / "dialogs.jsonl"));
  CHECK_FALSE(fs::exists(run / "checkpoints" / "step-000002"));
  CHECK_FALSE(fs::exists(run / "checkpoints" / "step-000004.tmp"));
  CHECK(fs::exists(run / "weights" / "tutor" / "model.safetensors"));
}

TEST_CASE("force refuses a folder with files it did not write, and deletes nothing") {
  const auto run = scratch("foreign");
  touch(run / "metrics.jsonl");
  touch(run / "notes.txt");
  const run_layout layout{run, run / "checkpoints", {}};
  const auto foreign = foreign_entries(layout);
  REQUIRE(foreign.size() == 1);
  CHECK(foreign.front().filename() == "notes.txt");
  CHECK_THROWS_AS(clear_run_outputs(layout), input_error);
  CHECK(fs::exists(run / "metrics.jsonl"));
  CHECK(fs::exists(run / "notes.txt"));
}

TEST_CASE("a checkpoint folder that is a project folder is refused") {
  const auto project = scratch("project");
  touch(project / "config" / "tiny.toml");
  touch(project / "step-000001" / "trainer_state.json");
  const auto run = scratch("project_run");
  const run_layout layout{run, project, {}};
  CHECK(foreign_entries(layout).size() == 2); // config/, and a step folder pedagogy did not write
  CHECK_THROWS_AS(clear_run_outputs(layout), input_error);
  CHECK(fs::exists(project / "config" / "tiny.toml"));
  CHECK(fs::exists(project / "step-000001" / "trainer_state.json"));
}

TEST_CASE("a second lock on the same folder is refused until the first is released") {
  const auto run = scratch("lock");
  {
    run_lock first(run);
    try {
      run_lock second(run);
      FAIL("the second lock should have been refused");
    } catch (const input_error& e) {
      CHECK(e.problem().find(std::to_string(::getpid())) != std::string::npos);
    }
  }
  run_lock again(run); // released with the first
}

TEST_CASE("checkpoints: finished ones are listed, damaged ones are told apart, tmp ones removed") {
  const auto dir = scratch("checkpoints");
  touch(dir / "step-000001" / "trainer_state.json");
  our_checkpoint(dir, 3, false);
  touch(dir / "step-000005.tmp" / "results.csv"); // a user's, named like ours
  touch(dir / "user.tmp");
  const auto found = list_checkpoints(dir);
  REQUIRE(found.size() == 1);
  CHECK(found.front().step == 1);
  const auto problem = checkpoint_problem(found.front().dir);
  CHECK(problem.find("config.json") != std::string::npos); // the first missing file
  CHECK(remove_temporaries(dir) == 1);
  CHECK_FALSE(fs::exists(dir / "step-000003.tmp"));
  CHECK(fs::exists(dir / "step-000005.tmp" / "results.csv")); // no marker: not ours
  CHECK(fs::exists(dir / "user.tmp"));
}

TEST_CASE("a folder or file named like a checkpoint is the user's unless it holds the marker") {
  // --force checkpoint.dir=D once deleted a user's D/step-1/results.csv; with checkpoint.dir
  // equal to the run folder, a user's file named step-2.
  const auto d = scratch("named_like");
  touch(d / "step-1" / "results.csv");
  our_checkpoint(d, 7, true);
  const auto run = scratch("named_like_run");
  const run_layout elsewhere{run, d, {}};
  REQUIRE(foreign_entries(elsewhere).size() == 1);
  CHECK(foreign_entries(elsewhere).front().filename() == "step-1");
  CHECK_THROWS_AS(clear_run_outputs(elsewhere), input_error);
  CHECK(fs::exists(d / "step-1" / "results.csv"));
  CHECK(fs::exists(d / "step-000007"));

  const auto same = scratch("named_like_same");
  touch(same / "step-2");
  touch(same / "metrics.jsonl");
  CHECK_THROWS_AS(clear_run_outputs({same, same, {}}), input_error);
  CHECK(fs::is_regular_file(same / "step-2"));

  // Finishing a checkpoint never replaces a user's folder of the same name.
  touch(d / "step-000009" / "notes.txt");
  const auto tmp = begin_checkpoint(d, 9);
  CHECK_THROWS_AS(finish_checkpoint(tmp, "{}\n"), files::write_error);
  CHECK(fs::exists(d / "step-000009" / "notes.txt"));
  // Nor does starting one replace a user's folder named like its temporary.
  touch(d / "step-000011.tmp" / "notes.txt");
  CHECK_THROWS_AS(begin_checkpoint(d, 11), files::write_error);
  CHECK(fs::exists(d / "step-000011.tmp" / "notes.txt"));
}

TEST_CASE("pruning keeps the checkpoint a role loads its model from, and every user folder") {
  // --force tutor.model=RUN/checkpoints/step-000002 checkpoint.keep_last=1 once deleted the
  // tutor's model folder under the running job.
  const auto dir = scratch("prune");
  const auto in_use = our_checkpoint(dir, 2, true);
  our_checkpoint(dir, 4, true);
  our_checkpoint(dir, 6, true);
  touch(dir / "step-000001" / "trainer_state.json"); // listed (a trainer state), not ours
  prune_checkpoints(dir, 1, {in_use, ""});
  CHECK(fs::exists(in_use));
  CHECK_FALSE(fs::exists(dir / "step-000004"));
  CHECK(fs::exists(dir / "step-000006"));
  CHECK(fs::exists(dir / "step-000001" / "trainer_state.json"));
}

TEST_CASE("the folder stays locked when its lock file is removed by hand") {
  // Removing .pedagogy.lock once let a second --force run wipe a live run's metrics.
  const auto run = scratch("lock_removed");
  run_lock first(run);
  fs::remove(run / ".pedagogy.lock");
  CHECK_THROWS_AS(run_lock{run}, input_error);
}

TEST_CASE("a trainer state that does not hold integers, or names another step, is damaged") {
  const auto dir = scratch("states") / "step-000002";
  touch(dir / "config.json");
  touch(dir / "optimizer.safetensors");
  auto state_problem = [&](const std::string& json) {
    std::ofstream(dir / "trainer_state.json") << json;
    return checkpoint_problem(dir);
  };
  CHECK(state_problem(R"({"step": "x", "weights_version": 2})").find("not a trainer state") !=
        std::string::npos);
  CHECK(state_problem(R"({"step": 2})").find("not a trainer state") != std::string::npos);
  CHECK(state_problem(R"({"step": 5, "weights_version": 5})").find("folder of step 2") !=
        std::string::npos);
  // A sound state gets past these checks to the weights (which are not real here).
  const auto problem = state_problem(R"({"step": 2, "weights_version": 2})");
  CHECK(problem.find("trainer_state") == std::string::npos);
  CHECK_FALSE(problem.empty());
}
