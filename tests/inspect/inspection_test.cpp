// Live inspection: the inspector's picture of a run (rows, heartbeats, rates, dialogs, steps),
// Prometheus's text format, the read-only HTTP server and its token, and the inspector actor
// asking real actors for their status.
#include "actors/generator_actor.hpp"
#include "actors/inspector_actor.hpp"
#include "inspect/http_server.hpp"
#include "inspect/inspection.hpp"
#include "inspect/prometheus.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <sstream>

using namespace pedagogy;
using namespace pedagogy::actors;
using namespace std::chrono_literals;
using clock_type = inspection::clock;

namespace {

inspected_actor who(const std::string& role, const std::string& kind, int64_t rank = 0) {
  return {role, 0, rank, "node-a", "cpu", kind, nullptr};
}

// The row of `role` in /status.
nlohmann::json row_of(const nlohmann::json& status, const std::string& role) {
  for (const auto& a : status["actors"])
    if (a["role"] == role)
      return a;
  FAIL("no row for " << role);
  return {};
}

// metric name (labels stripped) -> every sample line of it.
std::map<std::string, std::vector<std::string>> samples_of(const std::string& text) {
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#')
      out[line.substr(0, line.find_first_of("{ "))].push_back(line);
  return out;
}

} // namespace

TEST_CASE("an actor that stops reporting is shown as unresponsive, with the time since") {
  const auto t0 = clock_type::now();
  inspection picture({5.0, 20, "runs/x", "node-a"}, t0);
  const auto row = picture.join(who("tutor", "generator"), t0);
  generator_status st;
  st.running = 2;
  picture.on_generator(row, st, t0 + 1s);
  auto a = row_of(picture.status(t0 + 3s), "tutor");
  CHECK(a["state"] == "generating");
  CHECK(a["responsive"] == true);
  CHECK(a["in_flight"] == 2);
  a = row_of(picture.status(t0 + 10s), "tutor");
  CHECK(a["state"] == "unresponsive");
  CHECK(a["responsive"] == false);
  CHECK(a["last_report_s"].get<double>() == doctest::Approx(9.0));
}

TEST_CASE("an actor that never reports turns unresponsive a window after it joined") {
  const auto t0 = clock_type::now();
  inspection picture({5.0, 20, "", "n"}, t0);
  picture.join(who("student", "generator"), t0);
  CHECK(row_of(picture.status(t0 + 4s), "student")["state"] == "starting");
  CHECK(row_of(picture.status(t0 + 6s), "student")["state"] == "unresponsive");
}

TEST_CASE("a lost actor is unresponsive at once and says why") {
  const auto t0 = clock_type::now();
  inspection picture({5.0, 20, "", "n"}, t0);
  const auto row = picture.join(who("learner", "learner", 3), t0);
  picture.on_learner(row, learner_status{}, t0);
  picture.on_lost(row, "remote_link_unreachable");
  const auto a = row_of(picture.status(t0), "learner");
  CHECK(a["state"] == "unresponsive");
  CHECK(a["rank"] == 3);
  CHECK(a["last_error"].get<std::string>().find("remote_link_unreachable") != std::string::npos);
}

TEST_CASE("tokens per second are measured over the last 10 seconds of reports") {
  const auto t0 = clock_type::now();
  inspection picture({5.0, 20, "", "n"}, t0);
  const auto row = picture.join(who("tutor", "generator"), t0);
  auto rate_at = [&](std::chrono::seconds t) {
    return row_of(picture.status(t0 + t), "tutor")["tokens_per_s"].get<double>();
  };
  generator_status st;
  st.generated = 100;
  picture.on_generator(row, st, t0);
  CHECK(rate_at(0s) == 0.0); // one report: no rate yet
  st.generated = 300;
  picture.on_generator(row, st, t0 + 2s);
  CHECK(rate_at(2s) == doctest::Approx(100.0));
  st.generated = 1300;
  picture.on_generator(row, st, t0 + 3s);
  CHECK(rate_at(3s) == doctest::Approx(400.0)); // 1200 tokens in 3 s
  // Idle reports (a generator while the learner works) keep the window's rate, not 0 ...
  picture.on_generator(row, st, t0 + 4s);
  CHECK(rate_at(4s) == doctest::Approx(300.0));
  // ... until the burst leaves the window.
  for (int t = 5; t <= 14; ++t)
    picture.on_generator(row, st, t0 + std::chrono::seconds(t));
  CHECK(rate_at(14s) == doctest::Approx(0.0));
  CHECK(row_of(picture.status(t0 + 14s), "tutor")["tokens"] == 1300);
}

TEST_CASE("a learner's row shows its state and progress through the batch") {
  const auto t0 = clock_type::now();
  inspection picture({5.0, 20, "", "n"}, t0);
  const auto row = picture.join(who("learner", "learner"), t0);
  learner_status st;
  st.state = "learning";
  st.micro_done = 3;
  st.micro_total = 8;
  st.weights_version = 4;
  picture.on_learner(row, st, t0);
  const auto a = row_of(picture.status(t0), "learner");
  CHECK(a["state"] == "learning");
  CHECK(a["micro_batches_done"] == 3);
  CHECK(a["micro_batches_total"] == 8);
  CHECK(a["weights_version"] == 4);
}

TEST_CASE("dialogs in flight move to finished, newest first, keeping the last N") {
  const auto t0 = clock_type::now();
  inspection picture({5.0, 2, "", "n"}, t0);
  trainer_status run;
  run.step = 1;
  picture.on_trainer(run, t0);
  for (int i = 0; i < 3; ++i) {
    dialog_progress p;
    p.id = "1/0/" + std::to_string(i);
    p.step = 1;
    p.phase = "student_turn";
    p.messages = {{true, "What is 2+2? <think>secret</think>", 5}};
    picture.on_dialog(p, t0);
  }
  auto d = picture.dialogs();
  REQUIRE(d["in_flight"].size() == 3);
  CHECK(d["in_flight"][0]["phase"] == "student_turn");
  CHECK(d["in_flight"][0]["messages"][0]["role"] == "tutor");
  for (int i = 0; i < 3; ++i) {
    classroom::dialog_record r;
    r.id = "1/0/" + std::to_string(i);
    r.step = 1;
    r.status = i == 0 ? "failed" : "ok";
    picture.on_finished(r);
  }
  d = picture.dialogs();
  CHECK(d["in_flight"].empty());
  REQUIRE(d["finished"].size() == 2); // keep_dialogs = 2
  CHECK(d["finished"][0]["id"] == "1/0/2");
  CHECK(d["finished"][1]["id"] == "1/0/1");
  const auto st = picture.status(t0);
  CHECK(st["dialogs"]["finished"] == 3);
  CHECK(st["dialogs"]["failed"] == 1);
  CHECK(st["run"]["dialogs_done"] == 3);
}

TEST_CASE("/metrics declares each family once before its samples, counters ending in _total") {
  const auto t0 = clock_type::now();
  inspection picture({5.0, 20, "", "node \"quoted\"\nline"}, t0);
  const auto g = picture.join(who("tutor", "generator"), t0);
  const auto l = picture.join(who("learner", "learner"), t0);
  generator_status st;
  st.generated = 42;
  picture.on_generator(g, st, t0);
  picture.on_learner(l, learner_status{}, t0);
  picture.on_step(R"({"step":0,"reward":0.5,"step_s":2.5,"reject_rate_by_rule":{"leak":0.25},)"
                  R"("note":"text is skipped"})");
  const auto text = picture.prometheus(t0);
  std::set<std::string> typed;
  std::string current;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      CHECK_MESSAGE(typed.insert(name).second, name << " declared twice");
      if (type == "counter")
        CHECK_MESSAGE(name.size() > 6, name);
      if (type == "counter")
        CHECK(name.compare(name.size() - 6, 6, "_total") == 0);
      current = name;
    } else if (!line.empty() && line[0] != '#') {
      CHECK_MESSAGE(line.rfind(current, 0) == 0, line << " is not under its family " << current);
    }
  }
  const auto samples = samples_of(text);
  CHECK(samples.at("pedagogy_train_last_reward").front() == "pedagogy_train_last_reward 0.5");
  CHECK(samples.at("pedagogy_train_last_step_seconds").front() ==
        "pedagogy_train_last_step_seconds 2.5");
  CHECK(samples.at("pedagogy_train_last_reject_rate_by_rule_leak").front() ==
        "pedagogy_train_last_reject_rate_by_rule_leak 0.25");
  CHECK(samples.count("pedagogy_train_last_note") == 0);
  CHECK(text.find(R"(node="node \"quoted\"\nline")") != std::string::npos);
  bool tutor_tokens = false;
  for (const auto& line : samples.at("pedagogy_actor_tokens_total"))
    tutor_tokens = tutor_tokens || (line.find("role=\"tutor\"") != std::string::npos &&
                                    line.substr(line.rfind(' ') + 1) == "42");
  CHECK(tutor_tokens);
}

TEST_CASE("a metrics line that is not a JSON object is not a step") {
  inspection picture({5.0, 20, "", "n"}, clock_type::now());
  picture.on_step("{broken");
  picture.on_step("[1, 2]");
  CHECK(picture.steps().empty());
  picture.on_step(R"({"step": 0})");
  CHECK(picture.steps().size() == 1);
}

TEST_CASE("Prometheus names, label values and numbers are written as the format says") {
  CHECK(prometheus::metric_name("reward-mean.x") == "reward_mean_x");
  CHECK(prometheus::metric_name("1st") == "_1st");
  CHECK(prometheus::escape_label("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(prometheus::format_value(std::nan("")) == "NaN");
  CHECK(prometheus::format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(prometheus::format_value(0.1) == "0.1");
  CHECK(prometheus::format_value(3) == "3");
  prometheus::exposition e;
  e.family("x_total", prometheus::metric_type::counter, "help with \\ and\nnewline");
  e.family("empty", prometheus::metric_type::gauge, "no samples");
  e.sample("x_total", {{"k", "v"}}, 1);
  CHECK(e.text() == "# HELP x_total help with \\\\ and\\nnewline\n# TYPE x_total counter\n"
                    "x_total{k=\"v\"} 1\n");
}

TEST_CASE("a non-loopback address without a token is refused, naming inspect.host") {
  http::server_options o;
  o.host = "0.0.0.0";
  try {
    http::server s(o, [](const std::string&, const http::query&) { return http::response{}; });
    FAIL("it started");
  } catch (const input_error& e) {
    CHECK(e.where() == "inspect.host");
    CHECK(std::string(e.what()).find("token") != std::string::npos);
  }
  CHECK(http::is_loopback("127.0.0.1"));
  CHECK(http::is_loopback("localhost"));
  CHECK_FALSE(http::is_loopback("10.0.0.1"));
}

TEST_CASE("with a token, only requests that carry it are answered") {
  http::server_options o;
  o.token = "s3cret";
  http::server s(o, [](const std::string& path, const http::query&) {
    return http::response{200, "text/plain", "at " + path};
  });
  CHECK(http::get("127.0.0.1", s.port(), "/status", "s3cret") == "at /status");
  CHECK_THROWS_WITH_AS(http::get("127.0.0.1", s.port(), "/status"),
                       doctest::Contains("needs a token"), std::runtime_error);
  CHECK_THROWS_AS(http::get("127.0.0.1", s.port(), "/status", "wrong"), std::runtime_error);
  httplib::Client client("127.0.0.1", s.port());
  auto by_query = client.Get("/status?token=s3cret");
  REQUIRE(by_query);
  CHECK(by_query->status == 200);
  auto post = client.Post("/status?token=s3cret", "x", "text/plain");
  REQUIRE(post);
  CHECK(post->status == 405);
}

TEST_CASE("a port in use is an error naming inspect.port") {
  http::server first({}, [](const std::string&, const http::query&) { return http::response{}; });
  http::server_options o;
  o.port = first.port();
  CHECK_THROWS_WITH_AS(
    http::server(o, [](const std::string&, const http::query&) { return http::response{}; }),
    doctest::Contains("cannot listen"), input_error);
}

namespace {

// A generator that only answers status, counting its tokens up by 10 per question.
generator_actor::behavior_type counting_generator(generator_actor::pointer) {
  auto generated = std::make_shared<int64_t>(0);
  return {
    [](generate_atom, const generate_request&) { return generate_reply{}; },
    [](close_atom, const std::string&) { return token_history{}; },
    [generated](status_atom) {
      generator_status st;
      st.generated = (*generated += 10);
      st.device = "cpu";
      return st;
    },
    [](weights_atom, int64_t v) { return v; },
    [](cancel_atom, const std::string&) {},
  };
}

caf::behavior idle_learner(caf::event_based_actor*) {
  return {[](status_atom) {
    learner_status st;
    st.state = "idle";
    st.learn_calls = 7;
    return st;
  }};
}

struct system_fixture {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  system_fixture() {
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
  }
};

// Asks for /status until `done` holds for it (the inspector polls every 50 ms), or 10 s pass.
nlohmann::json status_when(caf::actor_system& system, const inspector_actor& inspector,
                           const std::function<bool(const nlohmann::json&)>& done) {
  caf::scoped_actor self{system};
  nlohmann::json last;
  const auto deadline = clock_type::now() + 10s;
  while (clock_type::now() < deadline) {
    self->request(inspector, 2s, render_atom::value, std::string("/status"))
      .receive([&](std::string& body) { last = nlohmann::json::parse(body); },
               [&](caf::error& e) { FAIL(system.render(e)); });
    if (done(last))
      return last;
    // Wait for the inspector's next poll: a message after it in its mailbox.
    self->receive(caf::after(std::chrono::milliseconds(50)) >> [] {});
  }
  return last;
}

} // namespace

TEST_CASE("the inspector asks every watched actor for its status and serves what they said") {
  system_fixture f;
  auto& system = *f.system;
  auto generator = system.spawn(counting_generator);
  auto learner = system.spawn(idle_learner);
  inspector_setup setup;
  setup.heartbeat = std::chrono::milliseconds(50);
  setup.options.unresponsive_after_s = 0.5;
  auto inspector = spawn_inspector(system, setup);
  caf::anon_send(
    inspector, join_atom::value,
    inspected_actor{"tutor", 0, 0, "n", "?", "generator", caf::actor_cast<caf::actor>(generator)});
  caf::anon_send(inspector, join_atom::value,
                 inspected_actor{"learner", 0, 0, "n", "?", "learner", learner});
  auto st = status_when(system, inspector, [](const nlohmann::json& s) {
    return !s.is_null() && row_of(s, "tutor")["tokens"].get<int64_t>() >= 30 &&
           row_of(s, "learner")["state"] == "idle";
  });
  CHECK(row_of(st, "tutor")["tokens"].get<int64_t>() >= 30); // asked again and again
  CHECK(row_of(st, "tutor")["device"] == "cpu");             // as the actor reports it
  CHECK(row_of(st, "learner")["learn_calls"] == 7);

  // An actor that exits stops answering: it is shown as unresponsive.
  caf::anon_send_exit(generator, caf::exit_reason::kill);
  st = status_when(system, inspector, [](const nlohmann::json& s) {
    return row_of(s, "tutor")["state"] == "unresponsive";
  });
  CHECK(row_of(st, "tutor")["state"] == "unresponsive");
  CHECK(row_of(st, "learner")["state"] == "idle");

  // The HTTP side: the page, the JSON, the text format, and a clear 404.
  inspection_server server(system, inspector, {});
  const auto page = http::get("127.0.0.1", server.port(), "/");
  CHECK(page.find("id=\"actors\"") != std::string::npos);
  CHECK(page.find("class=\"chart\"") != std::string::npos);
  CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg")); // no external assets
  CHECK(nlohmann::json::parse(http::get("127.0.0.1", server.port(), "/status"))["actors"].size() ==
        4);
  CHECK(http::get("127.0.0.1", server.port(), "/metrics").find("# TYPE pedagogy_actor_up gauge") !=
        std::string::npos);
  CHECK_THROWS_WITH_AS(http::get("127.0.0.1", server.port(), "/nope"),
                       doctest::Contains("HTTP 404"), std::runtime_error);
  caf::anon_send_exit(inspector, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(learner, caf::exit_reason::user_shutdown);
}
