// The OpenAI-compatible generator against a small fake server on 127.0.0.1.
#include "actors/openai_generator.hpp"
#include "actors/rollout.hpp"
#include "models/tensor/init_model.hpp"
#include "runtime/errors.hpp"
#include "tests/support/actor_system.hpp"

#include <arpa/inet.h>
#include <caf/all.hpp>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

using namespace pedagogy;
using namespace pedagogy::actors;
using json = nlohmann::json;

namespace {

const auto timeout = std::chrono::seconds(60);

// Answers chat completions with "echo: <last message, first 40 bytes> #<i>". Model "flaky" fails
// twice with HTTP 500 first, "garbled" answers with something that is not JSON, "down" always fails
// with HTTP 500, and "trickle" sends its answer one byte every 200 ms, forever. For any model,
// `fail_next` answers the next requests with HTTP 500, `empty_next` with no choices, and
// `completion_tokens` >= 0 adds a `usage` with that many completion tokens.
struct fake_server {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mutex;
  std::vector<json> bodies;
  std::vector<std::string> authorizations;
  int flaky_failures = 0;
  int fail_next = 0;
  int empty_next = 0;
  int64_t completion_tokens = -1;
  std::atomic<int> active{0};
  std::atomic<int> most_active{0};
  std::atomic<bool> stopping{false};

  fake_server() {
    server.Post(
      "/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
        int now = ++active;
        for (int seen = most_active; now > seen && !most_active.compare_exchange_weak(seen, now);) {
        }
        json body = json::parse(req.body);
        json answer = {{"choices", json::array()}};
        {
          std::lock_guard guard{mutex};
          bodies.push_back(body);
          authorizations.push_back(req.get_header_value("Authorization"));
          const bool flaky = body["model"] == "flaky" && flaky_failures < 2;
          flaky_failures += flaky ? 1 : 0;
          if (flaky || body["model"] == "down" || fail_next > 0) {
            fail_next -= fail_next > 0 && !flaky ? 1 : 0;
            res.status = 500;
            res.set_content("overloaded", "text/plain");
            --active;
            return;
          }
          if (completion_tokens >= 0)
            answer["usage"] = {{"prompt_tokens", 11}, {"completion_tokens", completion_tokens}};
          if (empty_next > 0) {
            --empty_next;
            res.set_content(answer.dump(), "application/json");
            --active;
            return;
          }
        }
        if (body["model"] == "garbled") {
          res.set_content("this is not json", "text/plain");
          --active;
          return;
        }
        if (body["model"] == "trickle") {
          --active;
          res.set_chunked_content_provider(
            "application/json", [this](size_t, httplib::DataSink& sink) {
              if (stopping)
                return false;
              // The slow server under test (not synchronisation): one byte per 200 ms, so no
              // single read waits long.
              std::this_thread::sleep_for(std::chrono::milliseconds(200));
              return sink.write(" ", 1);
            });
          return;
        }
        // A short echo: a whole system prompt would carry the end marker it explains.
        const std::string last = body["messages"].back()["content"];
        for (int i = 0; i < body.value("n", 1); ++i)
          answer["choices"].push_back(
            {{"index", i},
             {"message",
              {{"role", "assistant"},
               {"content", "echo: " + last.substr(0, 40) + " #" + std::to_string(i)}}},
             {"finish_reason", "stop"}});
        res.set_content(answer.dump(-1, ' ', false, json::error_handler_t::replace),
                        "application/json");
        --active;
      });
    port = server.bind_to_any_port("127.0.0.1"); // listening from here on; the loop accepts later
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~fake_server() {
    stopping = true;
    server.stop();
    thread.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port) + "/v1";
  }
  // The roles of the messages of the last request, e.g. "system,user".
  std::string last_roles() {
    std::lock_guard guard{mutex};
    std::string roles;
    for (const auto& m : bodies.back()["messages"])
      roles.append(roles.empty() ? "" : ",").append(m["role"].get<std::string>());
    return roles;
  }
};

// A URL whose port has nothing listening: a socket is bound to a free port, then closed.
std::string closed_port_url() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/v1";
}

using fixture = pedagogy::testing::actor_system_fixture;

openai_setup setup_for(const std::string& url, const std::string& model) {
  openai_setup s;
  s.base_url = url;
  s.model = model;
  s.max_retries = 3;
  s.backoff_s = 0.01;
  s.timeout_s = 10;
  return s;
}

generate_request chat(std::string text, int64_t n = 1) {
  generate_request r;
  r.messages = {{"user", std::move(text)}};
  r.n = n;
  r.max_new_tokens = 32;
  return r;
}

// The reply, or the error text.
std::pair<generate_reply, std::string> ask(caf::scoped_actor& self, const generator_actor& g,
                                           const generate_request& r,
                                           std::chrono::milliseconds wait = timeout) {
  std::pair<generate_reply, std::string> out;
  self->request(g, wait, generate_atom::value, r)
    .receive([&](generate_reply& reply) { out.first = std::move(reply); },
             [&](caf::error& e) { out.second = self->system().render(e); });
  return out;
}

} // namespace

TEST_CASE("an endpoint answers n samples, and sessions send the whole dialog") {
  fake_server server;
  fixture f;
  setenv("PEDAGOGY_TEST_KEY", "secret", 1);
  auto s = setup_for(server.url(), "judge-model");
  s.api_key_env = "PEDAGOGY_TEST_KEY";
  auto g = spawn_openai_generator(*f.system, s);
  caf::scoped_actor self{*f.system};

  auto [two, error] = ask(self, g, chat("hello", 2));
  CHECK(error.empty());
  REQUIRE(two.completions.size() == 2);
  CHECK(two.completions[0].text == "echo: hello #0");
  CHECK(two.completions[1].text == "echo: hello #1");
  CHECK(two.completions[0].finish_reason == "stop");

  auto first = chat("first");
  first.session = "d";
  first.open_session = true;
  ask(self, g, first);
  auto second = chat("second");
  second.session = "d";
  auto [answer, second_error] = ask(self, g, second);
  CHECK(answer.completions.at(0).text == "echo: second #0");
  std::lock_guard guard{server.mutex};
  const json& last = server.bodies.back();
  REQUIRE(last["messages"].size() == 3); // first, its answer, second
  CHECK(last["messages"][1]["content"] == "echo: first #0");
  CHECK(last["model"] == "judge-model");
  CHECK(server.authorizations.back() == "Bearer secret");
  unsetenv("PEDAGOGY_TEST_KEY");
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

TEST_CASE("server errors are retried with backoff, what cannot succeed is reported") {
  fake_server server;
  fixture f;
  caf::scoped_actor self{*f.system};

  auto flaky = spawn_openai_generator(*f.system, setup_for(server.url(), "flaky"));
  auto [reply, error] = ask(self, flaky, chat("again"));
  CHECK(error.empty());
  CHECK(reply.completions.at(0).text == "echo: again #0");
  CHECK(server.flaky_failures == 2);

  auto garbled = spawn_openai_generator(*f.system, setup_for(server.url(), "garbled"));
  const auto unreadable = ask(self, garbled, chat("x")).second;
  CHECK(unreadable.find("unreadable answer") != std::string::npos);
  CHECK(unreadable.find("hint:") != std::string::npos);

  auto unreachable = spawn_openai_generator(*f.system, setup_for(closed_port_url(), "m"));
  const auto failure = ask(self, unreachable, chat("anyone?")).second;
  CHECK(failure.find("cannot reach") != std::string::npos);
  CHECK(failure.find("after 4 attempts") != std::string::npos);
  // The generator is still there for the next request.
  CHECK(ask(self, unreachable, chat("still?")).second.find("cannot reach") != std::string::npos);
  for (auto& g : {flaky, garbled, unreachable})
    caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

TEST_CASE("no more calls run at once than max_concurrency, and all are answered") {
  fake_server server;
  fixture f;
  auto s = setup_for(server.url(), "m");
  s.max_concurrency = 2;
  auto g = spawn_openai_generator(*f.system, s);
  caf::scoped_actor self{*f.system};
  using handle =
    caf::response_handle<caf::blocking_actor, caf::detail::type_list<generate_reply>, true>;
  std::vector<handle> handles;
  for (int i = 0; i < 8; ++i)
    handles.push_back(self->request(g, timeout, generate_atom::value,
                                    chat(std::string("q").append(std::to_string(i)))));
  int answered = 0;
  for (auto& h : handles)
    h.receive([&](generate_reply&) { ++answered; },
              [&](caf::error& e) { FAIL(self->system().render(e)); });
  CHECK(answered == 8);
  CHECK(server.most_active <= 2);
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

TEST_CASE("bad setups and requests are refused with the reason") {
  fixture f;
  CHECK_THROWS_AS(spawn_openai_generator(*f.system, setup_for("localhost:8000", "m")), input_error);
  CHECK_THROWS_AS(spawn_openai_generator(*f.system, setup_for("http://127.0.0.1:9/v1", "")),
                  input_error);
  auto g = spawn_openai_generator(*f.system, setup_for("http://127.0.0.1:9/v1", "m"));
  caf::scoped_actor self{*f.system};
  generate_request ids;
  ids.tokens = {1, 2, 3};
  CHECK(ask(self, g, ids).second.find("takes messages") != std::string::npos);
  auto unknown = chat("x");
  unknown.session = "nope";
  CHECK(ask(self, g, unknown).second.find("unknown session 'nope'") != std::string::npos);
  CHECK(ask(self, g, chat("x", 0)).second.find("invalid sampling") != std::string::npos);
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

TEST_CASE("a failed first call leaves no session behind, so its retry opens it") {
  fake_server server;
  fixture f;
  auto s = setup_for(server.url(), "m");
  s.max_retries = 0;
  auto g = spawn_openai_generator(*f.system, s);
  caf::scoped_actor self{*f.system};
  server.fail_next = 1;
  auto first = chat("first");
  first.session = "d";
  first.open_session = true;
  CHECK(ask(self, g, first).second.find("HTTP 500") != std::string::npos);
  auto [reply, error] = ask(self, g, first); // the dialog's retry of the same request
  CHECK(error.empty());
  CHECK(reply.completions.at(0).text == "echo: first #0");
  auto second = chat("second");
  second.session = "d";
  CHECK(ask(self, g, second).second.empty());
  CHECK(server.last_roles() == "user,assistant,user");
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

TEST_CASE("a failed later call changes no session, so its retry sends each turn once") {
  fake_server server;
  fixture f;
  auto s = setup_for(server.url(), "m");
  s.max_retries = 0;
  auto g = spawn_openai_generator(*f.system, s);
  caf::scoped_actor self{*f.system};
  generate_request first = chat("first");
  first.messages.insert(first.messages.begin(), {"system", "be brief"});
  first.session = "d";
  first.open_session = true;
  REQUIRE(ask(self, g, first).second.empty());
  server.fail_next = 1;
  auto second = chat("second");
  second.session = "d";
  CHECK(ask(self, g, second).second.find("HTTP 500") != std::string::npos);
  auto [reply, error] = ask(self, g, second);
  CHECK(error.empty());
  CHECK(reply.completions.at(0).text == "echo: second #0");
  CHECK(server.last_roles() == "system,user,assistant,user");
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

TEST_CASE("an answer without choices fails that request only, and the generator serves the next") {
  fake_server server;
  fixture f;
  auto g = spawn_openai_generator(*f.system, setup_for(server.url(), "m"));
  caf::scoped_actor self{*f.system};
  const auto wait = std::chrono::seconds(10);
  server.empty_next = 1;
  CHECK(ask(self, g, chat("one-off"), wait).second.find("choices") != std::string::npos);
  server.empty_next = 1;
  auto open = chat("first");
  open.session = "d";
  open.open_session = true;
  CHECK(ask(self, g, open, wait).second.find("choices") != std::string::npos);
  auto [reply, error] = ask(self, g, open, wait);
  CHECK(error.empty());
  CHECK(reply.completions.size() == 1);
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

TEST_CASE("a message that is not valid UTF-8 is sent with replacement characters") {
  fake_server server;
  fixture f;
  auto g = spawn_openai_generator(*f.system, setup_for(server.url(), "m"));
  caf::scoped_actor self{*f.system};
  // A tutor cut off by max_new_tokens can end inside a multi-byte character.
  auto [reply, error] = ask(self, g, chat("caf\xc3"), std::chrono::seconds(10));
  CHECK(error.empty());
  CHECK(reply.completions.at(0).text == "echo: caf\xef\xbf\xbd #0");
  CHECK(ask(self, g, chat("ok"), std::chrono::seconds(10)).second.empty());
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

TEST_CASE("timeout_s bounds the whole call against a server that trickles bytes") {
  fixture f; // declared first so it ends last: the server stops before the system waits
  fake_server server;
  auto s = setup_for(server.url(), "trickle");
  s.timeout_s = 0.5;
  s.max_retries = 3;
  auto g = spawn_openai_generator(*f.system, s);
  caf::scoped_actor self{*f.system};
  const auto start = std::chrono::steady_clock::now();
  const auto error = ask(self, g, chat("slowly"), std::chrono::seconds(20)).second;
  const double seconds =
    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(error.find("timed out") != std::string::npos);
  CHECK(seconds < 3.0); // 0.5 s, and some slack for a loaded machine
  caf::anon_send_exit(g, caf::exit_reason::user_shutdown);
}

namespace {

// A guided dialog whose three roles are served by `url` (rule judges), up to 8 tutor turns.
std::shared_ptr<classroom_setup> http_classroom() {
  auto setup = std::make_shared<classroom_setup>();
  auto& s = *setup;
  s.prompts = classroom::prompt_set::load(
    std::filesystem::path(PEDAGOGY_SOURCE_DIR) / "prompt_templates", {"simple_student"}, {});
  s.limits.max_tutor_turns = 8;
  s.limits.judge_rules = {"does_not_leak_answer"};
  s.limits.judge_attempts = 1;
  s.rule_judge = true;
  s.personas = {"simple_student"};
  s.student_names = {"Alex"};
  s.forced_type = classroom::dialog_type::guided;
  s.number_student_attempts = 2;
  s.max_call_retries = 1;
  return setup;
}

classroom::dialog_record run_http_dialog(caf::actor_system& system,
                                         std::shared_ptr<const classroom_setup> setup,
                                         const openai_setup& endpoint) {
  role_generators generators{
    spawn_openai_generator(system, endpoint), spawn_openai_generator(system, endpoint), {}};
  auto jobs = make_jobs(0, {{"What is 6 times 7?", "42", 1}}, {0}, 1, 1);
  auto results = run_rollout(system, std::move(setup), generators, std::move(jobs));
  caf::anon_send_exit(generators.tutor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(generators.student, caf::exit_reason::user_shutdown);
  REQUIRE(results.size() == 1);
  return results.front().record;
}

} // namespace

TEST_CASE("a dialog whose HTTP calls fail records the server's error as its cause") {
  fake_server server;
  fixture f;
  auto endpoint = setup_for(server.url(), "down");
  endpoint.max_retries = 0;
  const auto record = run_http_dialog(*f.system, http_classroom(), endpoint);
  CHECK(record.status == "failed");
  CHECK(record.error.find("HTTP 500") != std::string::npos);
  CHECK(record.error.find("exists") == std::string::npos);
  // The generator's own words, with its hint, not CAF's "system_error(runtime_error, (...))".
  CHECK(record.error.find("system_error") == std::string::npos);
  CHECK(record.error.find("hint:") != std::string::npos);
}

TEST_CASE("a dialog whose first HTTP call fails once is retried and completes") {
  fake_server server;
  fixture f;
  auto endpoint = setup_for(server.url(), "m");
  endpoint.max_retries = 0;
  server.fail_next = 1;
  auto setup = http_classroom();
  setup->limits.max_tutor_turns = 2;
  const auto record = run_http_dialog(*f.system, setup, endpoint);
  CHECK(record.error == "");
  CHECK(record.status == "ok");
  CHECK(record.tutor_turns == 2);
}

TEST_CASE("top_k goes to the endpoint when it is on and send_top_k allows it") {
  fake_server server;
  fixture f;
  caf::scoped_actor self{*f.system};
  auto sampled = chat("x");
  sampled.top_k = 20;
  auto s = setup_for(server.url(), "m");
  auto g = spawn_openai_generator(*f.system, s);
  REQUIRE(ask(self, g, sampled).second.empty());
  CHECK(server.bodies.back().value("top_k", 0) == 20);
  REQUIRE(ask(self, g, chat("top-k off")).second.empty());
  CHECK_FALSE(server.bodies.back().contains("top_k"));
  s.send_top_k = false;
  auto refusing = spawn_openai_generator(*f.system, s);
  REQUIRE(ask(self, refusing, sampled).second.empty());
  CHECK_FALSE(server.bodies.back().contains("top_k"));
  for (auto& one : {g, refusing})
    caf::anon_send_exit(one, caf::exit_reason::user_shutdown);
}

TEST_CASE("token counts come from the server's usage, else from the role's tokenizer") {
  fake_server server;
  fixture f;
  caf::scoped_actor self{*f.system};
  auto g = spawn_openai_generator(*f.system, setup_for(server.url(), "m"));
  server.completion_tokens = 7;
  auto [one, one_error] = ask(self, g, chat("hi"));
  REQUIRE(one.completions.size() == 1);
  CHECK(one.completions[0].token_count == 7);
  // n > 1: the usage is the sum over the samples, shared out by their text lengths.
  auto [two, two_error] = ask(self, g, chat("hi", 2));
  REQUIRE(two.completions.size() == 2);
  CHECK(two.completions[0].token_count + two.completions[1].token_count == 7);
  CHECK(two.completions[0].token_count >= 3);
  CHECK(two.completions[1].token_count >= 3);

  // No usage: the byte-level test tokenizer spells each byte as one token, plus end-of-turn.
  const auto dir = std::filesystem::temp_directory_path() /
                   ("pedagogy_openai_tokenizer_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "tokenizer.json");
    out << models::byte_level_tokenizer_json(models::model_family::qwen2);
  }
  server.completion_tokens = -1;
  auto s = setup_for(server.url(), "m");
  s.tokenizer = dir / "tokenizer.json";
  auto counted = spawn_openai_generator(*f.system, s);
  auto [three, three_error] = ask(self, counted, chat("hi", 2));
  REQUIRE(three.completions.size() == 2);
  CHECK(three.completions[0].token_count ==
        static_cast<int64_t>(std::string("echo: hi #0").size()) + 1);
  // A usage no request could produce (more than max_new_tokens + 1) is not trusted: the
  // tokenizer counts instead.
  server.completion_tokens = 999999999999;
  auto [four, four_error] = ask(self, counted, chat("hi"));
  REQUIRE(four.completions.size() == 1);
  CHECK(four.completions[0].token_count ==
        static_cast<int64_t>(std::string("echo: hi #0").size()) + 1);
  std::filesystem::remove_all(dir);
  s.tokenizer = dir / "tokenizer.json";
  CHECK_THROWS_AS(spawn_openai_generator(*f.system, s), input_error);
  for (auto& one_g : {g, counted})
    caf::anon_send_exit(one_g, caf::exit_reason::user_shutdown);
}

TEST_CASE("HTTP roles' token counts feed the dialog's token budget and the length penalty") {
  fake_server server;
  fixture f;
  server.completion_tokens = 100; // 99 content tokens and the end-of-turn token per turn
  auto setup = http_classroom();
  setup->limits.max_tokens_in_conversation = 250; // crossed by the third message: T S T
  setup->weights.length_penalty = 0.5;
  setup->weights.max_tokens_per_turn = 100; // a 99-token turn counts as cut off
  const auto record = run_http_dialog(*f.system, setup, setup_for(server.url(), "m"));
  CHECK(record.status == "ok");
  CHECK(record.tutor_turns == 2);
  CHECK(record.messages.size() == 3);
  CHECK(record.tutor_tokens == 200);
  CHECK(record.student_tokens == 100);
  CHECK(record.reward.length == doctest::Approx(-0.5));
}

TEST_CASE("a dialog whose retry is refused records the failure that made it a retry") {
  dialog_runner runner(http_classroom(),
                       make_jobs(0, {{"What is 6 times 7?", "42", 1}}, {0}, 1, 1).front());
  REQUIRE(runner.next().has_value());
  runner.on_failure("tutor generator: HTTP 500 from the server", true);
  REQUIRE(runner.next().has_value()); // the retry
  runner.on_failure("tutor generator: session 'x' exists", false);
  while (auto call = runner.next())
    runner.on_closed({}); // only closes remain
  const auto record = runner.finish().record;
  CHECK(record.status == "failed");
  CHECK(record.error.find("HTTP 500") != std::string::npos);
  CHECK(record.error.find("exists") != std::string::npos);
}
