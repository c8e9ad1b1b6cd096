// The OpenAI-compatible generator against a small fake server on 127.0.0.1.
#include "actors/openai_generator.hpp"
#include "runtime/errors.hpp"

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
#include <mutex>
#include <thread>

using namespace pedagogy;
using namespace pedagogy::actors;
using json = nlohmann::json;

namespace {

const auto timeout = std::chrono::seconds(60);

// Answers chat completions with "echo: <last message> #<i>"; model "flaky" fails twice with
// HTTP 500 first, model "garbled" answers with something that is not JSON.
struct fake_server {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mutex;
  std::vector<json> bodies;
  std::vector<std::string> authorizations;
  int flaky_failures = 0;
  std::atomic<int> active{0};
  std::atomic<int> most_active{0};

  fake_server() {
    server.Post(
      "/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
        int now = ++active;
        for (int seen = most_active; now > seen && !most_active.compare_exchange_weak(seen, now);) {
        }
        json body = json::parse(req.body);
        {
          std::lock_guard guard{mutex};
          bodies.push_back(body);
          authorizations.push_back(req.get_header_value("Authorization"));
          if (body["model"] == "flaky" && flaky_failures < 2) {
            ++flaky_failures;
            res.status = 500;
            res.set_content("overloaded", "text/plain");
            --active;
            return;
          }
        }
        if (body["model"] == "garbled") {
          res.set_content("this is not json", "text/plain");
          --active;
          return;
        }
        json choices = json::array();
        for (int i = 0; i < body.value("n", 1); ++i)
          choices.push_back(
            {{"index", i},
             {"message",
              {{"role", "assistant"},
               {"content", "echo: " + body["messages"].back()["content"].get<std::string>() + " #" +
                             std::to_string(i)}}},
             {"finish_reason", "stop"}});
        res.set_content(json{{"choices", choices}}.dump(), "application/json");
        --active;
      });
    port = server.bind_to_any_port("127.0.0.1"); // listening from here on; the loop accepts later
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~fake_server() {
    server.stop();
    thread.join();
  }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port) + "/v1";
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

struct fixture {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  fixture() {
    add_message_types(config);
    system = std::make_unique<caf::actor_system>(config);
  }
};

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
                                           const generate_request& r) {
  std::pair<generate_reply, std::string> out;
  self->request(g, timeout, generate_atom::value, r)
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
  CHECK(ask(self, garbled, chat("x")).second.find("unreadable answer") != std::string::npos);

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
