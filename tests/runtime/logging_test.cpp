// Process logging: the rank in every line, level specs, and which source of the level wins.
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace plog = pedagogy::log;

namespace {

// A log file that is removed afterwards; its text is read after flushing every logger.
struct temp_log {
  std::filesystem::path path = std::filesystem::temp_directory_path() / "pedagogy_logging_test.log";
  temp_log() {
    std::filesystem::remove(path);
  }
  ~temp_log() {
    std::filesystem::remove(path);
  }
  std::string text() const {
    plog::flush();
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

plog::options options_for(std::string levels, std::string file = {}, int rank = 0,
                          bool levels_are_final = false) {
  plog::options o;
  o.levels = std::move(levels);
  o.file = std::move(file);
  o.rank = rank;
  o.levels_are_final = levels_are_final;
  return o;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("the rank comes from the launcher's environment") {
  unsetenv("OMPI_COMM_WORLD_RANK");
  unsetenv("PMI_RANK");
  unsetenv("PMIX_RANK");
  unsetenv("SLURM_PROCID");
  CHECK(plog::rank_from_environment() == 0);
  setenv("SLURM_PROCID", "7", 1);
  CHECK(plog::rank_from_environment() == 7);
  setenv("OMPI_COMM_WORLD_RANK", "3", 1); // mpirun's variable wins over Slurm's
  CHECK(plog::rank_from_environment() == 3);
  setenv("OMPI_COMM_WORLD_RANK", "x", 1); // garbage is skipped
  CHECK(plog::rank_from_environment() == 7);
  unsetenv("OMPI_COMM_WORLD_RANK");
  unsetenv("SLURM_PROCID");
}

TEST_CASE("level specs are checked before use") {
  CHECK_NOTHROW(plog::validate_levels("info", "test"));
  CHECK_NOTHROW(plog::validate_levels("warn,engine=debug,config=off", "test"));
  CHECK_THROWS_AS(plog::validate_levels("verbose", "test"), pedagogy::input_error);
  CHECK_THROWS_AS(plog::validate_levels("=debug", "test"), pedagogy::input_error);
  CHECK_THROWS_AS(plog::validate_levels("", "test"), pedagogy::input_error);
  CHECK_THROWS_AS(plog::validate_levels("info,engine=loud", "test"), pedagogy::input_error);
}

TEST_CASE("every line carries the rank and the logger's name") {
  unsetenv(plog::level_env_var);
  temp_log file;
  plog::setup(options_for("info", file.path.string(), 5));
  plog::get("trainer")->info("step {} done", 12);
  plog::get("trainer")->debug("hidden at info");
  std::string text = file.text();
  CHECK(contains(text, "[r5] [trainer] [info] step 12 done"));
  CHECK_FALSE(contains(text, "hidden at info"));
}

TEST_CASE("per-logger levels and the environment variable") {
  temp_log file;
  unsetenv(plog::level_env_var);
  plog::setup(options_for("info,engine=debug", file.path.string(), 0));
  plog::get("engine")->debug("engine detail");
  plog::get("config")->debug("config detail");
  std::string text = file.text();
  CHECK(contains(text, "engine detail"));
  CHECK_FALSE(contains(text, "config detail"));

  setenv(plog::level_env_var, "debug", 1); // the environment beats the config...
  plog::setup(options_for("warn", file.path.string(), 0));
  plog::get("config")->debug("env wins");
  CHECK(contains(file.text(), "env wins"));

  // ...and a command-line level beats the environment.
  plog::setup(options_for("error", file.path.string(), 0, /*levels_are_final=*/true));
  plog::get("config")->warn("cli wins");
  CHECK_FALSE(contains(file.text(), "cli wins"));

  setenv(plog::level_env_var, "chatty", 1);
  CHECK_THROWS_AS(plog::setup(options_for("info")), pedagogy::input_error);
  unsetenv(plog::level_env_var);
  plog::setup({});
}

TEST_CASE("an unwritable log file is bad input, not a crash") {
  unsetenv(plog::level_env_var);
  // spdlog creates missing folders (and tests may run as root), so block the path with a file.
  temp_log blocker;
  std::ofstream(blocker.path) << "a file, not a folder";
  const std::string inside_a_file = (blocker.path / "sub" / "pedagogy.log").string();
  auto error = [&] {
    try {
      plog::setup(options_for("info", inside_a_file));
    } catch (const pedagogy::input_error& e) {
      return std::string(e.what()) + " " + e.hint();
    }
    return std::string("no error");
  }();
  CHECK(contains(error, "cannot open log file"));
  plog::setup({});
}

TEST_CASE("input errors render where, what and the hint") {
  pedagogy::input_error e("x.toml:3:1", "unknown key 'a'", "did you mean 'b'?");
  CHECK(pedagogy::describe(e) == "error: x.toml:3:1: unknown key 'a'\n  hint: did you mean 'b'?");
  pedagogy::input_error bare("", "something odd");
  CHECK(pedagogy::describe(bare) == "error: something odd");
}
