// Distribution readiness: the same rollout with the generators in a second actor system, reached
// over CAF's middleman on 127.0.0.1, gives the records of the all-local run under greedy
// sampling. Only the placement differs, so every message must survive serialisation.
#include "actors/rollout.hpp"
#include "config/config.hpp"
#include "jobs/setup.hpp"
#include "models/tensor/init_model.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <doctest/doctest.h>

#include <filesystem>
#include <numeric>

using namespace pedagogy;
using namespace pedagogy::actors;
namespace fs = std::filesystem;

namespace {

config::config tiny_greedy(const fs::path& dir) {
  auto cfg = config::load_file(fs::path(PEDAGOGY_SOURCE_DIR) / "config/tiny.toml", {});
  cfg.tutor.model = (dir / "tutor").string();
  cfg.student.model = (dir / "student").string();
  for (auto* role : {&cfg.tutor, &cfg.student}) {
    role->sampling.temperature = 0;
    // One sequence per engine step: the arithmetic of each row does not depend on which other
    // dialogs happen to share a batch, so the two placements can be compared exactly.
    role->max_batch_sequences = 1;
  }
  cfg.classroom.templates_dir = (fs::path(PEDAGOGY_SOURCE_DIR) / "prompt_templates").string();
  cfg.classroom.number_student_attempts = 2;
  return cfg;
}

std::vector<std::string> comparable(std::vector<dialog_result> results) {
  std::vector<std::string> out;
  for (auto& r : results) {
    r.record.seconds = r.record.waiting_seconds = 0;
    out.push_back(classroom::to_json_line(r.record));
    out.push_back(std::to_string(r.tutor.tokens.size()));
  }
  return out;
}

std::vector<dialog_result> run(caf::actor_system& system, const config::config& cfg,
                               const role_generators& generators) {
  std::vector<classroom::problem> problems = {
    {"What is 6 times 7?", "42", 1},
    {"Solve for x: 2x + 3 = 11.", "4", 2},
    {"A train travels 120 km in 2 hours. What is its speed in km/h?", "60", 3}};
  auto jobs = make_jobs(0, problems, {0, 1, 2}, 2, 5);
  return run_rollout(system, make_classroom_setup(cfg), generators, std::move(jobs));
}

void stop(const role_generators& g) {
  caf::anon_send_exit(g.tutor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(g.student, caf::exit_reason::user_shutdown);
}

} // namespace

TEST_CASE("generators in another actor system over the middleman give the local records") {
  const fs::path dir = fs::temp_directory_path() / "pedagogy_rollout_remote_test";
  fs::remove_all(dir);
  const auto cfg = tiny_greedy(dir);
  ensure_model(cfg.tutor, "tutor", 1);
  ensure_model(cfg.student, "student", 2);

  std::vector<std::string> local;
  {
    caf::actor_system_config sc;
    configure_actor_system(sc, cfg, false);
    caf::actor_system system{sc};
    auto generators = spawn_role_generators(system, cfg);
    local = comparable(run(system, cfg, generators));
    stop(generators);
  }

  std::vector<std::string> remote;
  {
    caf::actor_system_config host_config, client_config;
    configure_actor_system(host_config, cfg, true);
    configure_actor_system(client_config, cfg, true);
    caf::actor_system host{host_config};
    caf::actor_system client{client_config};
    auto served = spawn_role_generators(host, cfg);
    auto tutor_port = host.middleman().publish(served.tutor, 0, "127.0.0.1");
    auto student_port = host.middleman().publish(served.student, 0, "127.0.0.1");
    REQUIRE(tutor_port);
    REQUIRE(student_port);
    auto tutor = client.middleman().remote_actor<generator_actor>("127.0.0.1", *tutor_port);
    auto student = client.middleman().remote_actor<generator_actor>("127.0.0.1", *student_port);
    REQUIRE(tutor);
    REQUIRE(student);
    // Proxies of the host's actors, not local handles: every call crosses the middleman.
    CHECK(host.node() != client.node());
    CHECK(tutor->node() == host.node());
    CHECK(student->node() == host.node());
    role_generators proxies{*tutor, *student, {}};
    remote = comparable(run(client, cfg, proxies));
    proxies = {};
    stop(served);
  }

  REQUIRE(local.size() == 12);
  CHECK(remote == local);
  // The comparison means something: the dialogs did talk, and greedy samples of different
  // problems differ.
  CHECK(local[0].find("\"tutor_turns\":2") != std::string::npos);
  CHECK(local[0] != local[2]);
  fs::remove_all(dir);
}
