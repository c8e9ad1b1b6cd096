// The inspection server under hostile clients: connections that never send a request, slowloris
// (a request head sent a byte at a time, never finished), and a full house of requests being
// answered. The hostile clients are raw loopback sockets, so nothing in them is polite.
#include "inspect/http_server.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace pedagogy;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

// A loopback TCP connection to `port` that says only what the test makes it say.
class raw_connection {
public:
  explicit raw_connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  }
  raw_connection(raw_connection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  raw_connection& operator=(raw_connection&&) = delete;
  ~raw_connection() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  // Failures are ignored: a hostile client keeps going after the server hangs up.
  void send(std::string_view bytes) {
    [[maybe_unused]] auto sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  // Reads what the server sends until it closes the connection or `deadline` passes: whether it
  // closed, and what it said.
  std::pair<bool, std::string> read_until(steady::time_point deadline) {
    std::string said;
    char buffer[4096];
    for (;;) {
      const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
      pollfd ready{fd_, POLLIN, 0};
      if (::poll(&ready, 1, static_cast<int>(std::max<int64_t>(0, left))) <= 0)
        return {false, said};
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return {true, said};
      if (n > 0)
        said.append(buffer, static_cast<size_t>(n));
    }
  }

private:
  int fd_;
};

// The i-th byte of a request head that never ends: a request line, then header after header.
char endless_head_byte(size_t i) {
  static const std::string start = "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  static const std::string line = "X-Slow: 1\r\n";
  return i < start.size() ? start[i] : line[(i - start.size()) % line.size()];
}

// Slowloris: keeps every connection's request head unfinished by sending each one more byte every
// 100 ms, on a thread of its own, until destroyed.
class slowloris {
public:
  slowloris(int port, int connections) {
    for (int i = 0; i < connections; ++i)
      connections_.emplace_back(port);
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      for (size_t i = 0; !wake_.wait_for(lock, 100ms, [this] { return stop_; }); ++i)
        for (auto& c : connections_)
          c.send(std::string(1, endless_head_byte(i)));
    });
  }
  ~slowloris() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  std::vector<raw_connection>& connections() {
    return connections_;
  }

private:
  std::vector<raw_connection> connections_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

http::response ok(const std::string&, const http::query&) {
  return {200, "text/plain", "ok"};
}

} // namespace

TEST_CASE("ordinary GETs are answered at once while 200 idle and 30 slowloris clients hold "
          "connections") {
  http::server_options options;
  options.token = "s3cret"; // the hostile clients get in before any token is checked
  http::server s(options, ok);
  std::vector<raw_connection> idle;
  for (int i = 0; i < 200; ++i)
    idle.emplace_back(s.port());
  slowloris slow(s.port(), 30);

  for (int i = 0; i < 2; ++i) {
    const auto start = steady::now();
    std::string body;
    CHECK_NOTHROW(body = http::get("127.0.0.1", s.port(), "/status", "s3cret", 15));
    const double took = seconds_since(start);
    MESSAGE("GET " << i + 1 << " took " << took << " s");
    CHECK(body == "ok");
    CHECK(took < 15);
  }

  // The server holds a bounded number of connections: the others have been closed already.
  const auto deadline = steady::now() + 1s;
  int open = 0;
  for (auto* group : {&idle, &slow.connections()})
    for (auto& c : *group)
      open += c.read_until(deadline).first ? 0 : 1;
  MESSAGE(open << " of 230 hostile connections still open");
  CHECK(open <= http::max_connections);
}

TEST_CASE("a connection that trickles its request head is closed by the request deadline") {
  http::server s({}, ok);
  raw_connection c(s.port());
  const auto start = steady::now();
  const auto give_up = start + http::request_deadline + 5s;
  bool closed = false;
  for (size_t i = 0; !closed && steady::now() < give_up; ++i) {
    c.send(std::string(1, endless_head_byte(i)));
    closed = c.read_until(steady::now() + 100ms).first;
  }
  const double held = seconds_since(start);
  const std::string what = closed ? "closed" : "still open";
  MESSAGE("the trickling connection was " << what << " after " << held << " s");
  CHECK(closed);
  CHECK(held < std::chrono::duration<double>(http::request_deadline + 2s).count());
}

TEST_CASE("when every held connection is being answered a new one is refused with 503 at once") {
  std::mutex mutex;
  std::condition_variable changed;
  int answering = 0;
  bool release = false;
  http::server s({}, [&](const std::string&, const http::query&) {
    std::unique_lock lock(mutex);
    ++answering;
    changed.notify_all();
    changed.wait(lock, [&] { return release; });
    return http::response{200, "text/plain", "ok"};
  });
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  // Lets the handlers go and joins the clients on every way out, REQUIRE's included.
  auto finish = [&] {
    {
      std::lock_guard lock(mutex);
      release = true;
    }
    changed.notify_all();
    for (auto& t : clients)
      t.join();
    clients.clear();
  };
  struct on_exit {
    std::function<void()> run;
    ~on_exit() {
      run();
    }
  } guard{finish};
  for (int i = 0; i < http::max_connections; ++i)
    clients.emplace_back([&] {
      try {
        answered += http::get("127.0.0.1", s.port(), "/", {}, 15) == "ok" ? 1 : 0;
      } catch (const std::exception&) {
      }
    });
  {
    std::unique_lock lock(mutex);
    REQUIRE(changed.wait_for(lock, 10s, [&] { return answering == http::max_connections; }));
  }

  const auto start = steady::now();
  raw_connection extra(s.port());
  const auto [closed, said] = extra.read_until(start + 5s);
  MESSAGE("the extra connection heard '" << said.substr(0, said.find('\r')) << "' after "
                                         << seconds_since(start) << " s");
  CHECK(closed);
  CHECK(said.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(seconds_since(start) < 2);
  finish();
  CHECK(answered == http::max_connections);
}

TEST_CASE("a keep-alive connection is answered request after request") {
  http::server s({}, ok);
  httplib::Client client("127.0.0.1", s.port());
  client.set_keep_alive(true);
  for (int i = 0; i < 3; ++i) {
    auto reply = client.Get("/status");
    REQUIRE(reply);
    CHECK(reply->body == "ok");
  }
}
