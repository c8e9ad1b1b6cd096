// The inspection server and its client (see http_server.hpp for why connections are guarded).
#include "inspect/http_server.hpp"

#include "runtime/errors.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace pedagogy::http {

namespace {

using steady = std::chrono::steady_clock;

// Connections the kernel queues for accept(). httplib listens with a backlog of 5, and a connect
// that finds the queue full is dropped and retried a second later: a burst of hostile connects
// would delay everyone's by that much. Linux caps this at net.core.somaxconn (4096).
constexpr int listen_backlog = 1024;

// Compares without stopping at the first difference, so timing does not reveal the token.
bool same_token(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

bool authorised(const httplib::Request& request, const std::string& token) {
  if (token.empty())
    return true;
  const auto header = request.get_header_value("Authorization");
  const std::string bearer = "Bearer ";
  if (header.rfind(bearer, 0) == 0 && same_token(header.substr(bearer.size()), token))
    return true;
  // A browser opening the page cannot set a header: ?token= works as well.
  return request.has_param("token") && same_token(request.get_param_value("token"), token);
}

// Waits until `sock` is ready for `events` (or hung up) before `deadline`: false once it passed.
bool ready_by(socket_t sock, short events, steady::time_point deadline) {
  for (;;) {
    const auto left =
      std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now()).count();
    if (left <= 0)
      return false;
    pollfd p{sock, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
    if (n > 0)
      return true; // the read or write that follows tells data from a hang-up
    if (n < 0 && errno != EINTR)
      return false;
  }
}

// The address at either end of `sock`, as httplib reports it in a request.
void address_of(socket_t sock, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t size = sizeof a;
  auto* any = reinterpret_cast<sockaddr*>(&a);
  if ((peer ? ::getpeername(sock, any, &size) : ::getsockname(sock, any, &size)) != 0)
    return;
  char text[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    ::inet_ntop(AF_INET, &v4.sin_addr, text, sizeof text);
    port = ntohs(v4.sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    ::inet_ntop(AF_INET6, &v6.sin6_addr, text, sizeof text);
    port = ntohs(v6.sin6_port);
  }
  ip = text;
}

// A connection as httplib reads and writes it, with one deadline for a whole request and one for
// its answer, where httplib's own stream restarts its timeout on every recv and send.
class deadline_stream final : public httplib::Stream {
public:
  explicit deadline_stream(socket_t sock) : sock_(sock) {}

  // The next request must have arrived by `deadline`; its answer's deadline starts with its
  // first write.
  void expect_request(steady::time_point deadline) {
    read_by_ = deadline;
    write_by_.reset();
  }

  bool is_readable() const override {
    return begin_ < end_ || ready_by(sock_, POLLIN, read_by_);
  }
  bool is_writable() const override {
    if (!write_by_)
      write_by_ = steady::now() + answer_deadline;
    return ready_by(sock_, POLLOUT, *write_by_);
  }

  // Whether a read ran into the request's deadline: the connection is then closed, even when
  // httplib still answered (400 for a head cut short), or a trickling client would keep it.
  bool late() const {
    return late_;
  }

  ssize_t read(char* ptr, size_t size) override {
    while (begin_ == end_) {
      if (!ready_by(sock_, POLLIN, read_by_)) {
        late_ = true;
        return -1;
      }
      const ssize_t n = ::recv(sock_, buffer_.data(), buffer_.size(), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return n;
      begin_ = 0;
      end_ = n > 0 ? static_cast<size_t>(n) : 0;
    }
    const size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_.data() + begin_, n);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }

  // Partial writes are fine: httplib writes the rest.
  ssize_t write(const char* ptr, size_t size) override {
    for (;;) {
      if (!is_writable())
        return -1;
      const ssize_t n = ::send(sock_, ptr, size, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0 || (errno != EAGAIN && errno != EINTR))
        return n;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    address_of(sock_, /*peer=*/true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    address_of(sock_, /*peer=*/false, ip, port);
  }
  socket_t socket() const override {
    return sock_;
  }

private:
  socket_t sock_;
  steady::time_point read_by_;
  mutable std::optional<steady::time_point> write_by_;
  // A request head is read a byte at a time: one recv fills this instead of one per byte.
  std::array<char, 4096> buffer_{};
  size_t begin_ = 0, end_ = 0;
  bool late_ = false;
};

// Answers a connection there is no room for without waiting on it, so its client learns that the
// server is busy instead of hanging.
void refuse(socket_t sock) {
  static const std::string busy = [] {
    const std::string body = "busy: every connection is being answered; try again\n";
    return fmt::format("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: "
                       "1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n"
                       "{}",
                       body.size(), body);
  }();
  [[maybe_unused]] auto sent = ::send(sock, busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::close(sock);
}

// httplib::Server with its own accept loop and threads (see the header for why). Connections
// move waiting -> answering (a handler runs) -> waiting (the next request) and leave; only a
// waiting one is closed to make room.
class guarded_server final : public httplib::Server {
public:
  ~guarded_server() override {
    finish();
  }

  // Starts serving on the socket bind_to_port() bound.
  void start() {
    ::listen(svr_sock_, listen_backlog); // on a listening socket, only changes the backlog
    for (int i = 0; i < max_connections; ++i)
      workers_.emplace_back([this] { work(); });
    acceptor_ = std::thread([this, listening = socket_t(svr_sock_)] { accept_loop(listening); });
  }

  // Called by a handler: the connection on this thread is being answered, not to be closed.
  void answering() {
    std::lock_guard lock(mutex_);
    if (auto c = find(current_); c != held_.end())
      c->answering = true;
  }

private:
  struct connection {
    socket_t sock;
    steady::time_point since; // waiting since accept or the previous answer
    bool answering = false;
  };

  void accept_loop(socket_t listening) {
    for (;;) {
      const socket_t sock = ::accept4(listening, nullptr, nullptr, SOCK_CLOEXEC);
      if (sock != INVALID_SOCKET)
        admit(sock);
      else if (stopping_)
        return; // finish() shut the listening socket down
      else if (errno != EINTR && errno != ECONNABORTED)
        // Out of descriptors or memory: the connection stays in the backlog, so back off
        // instead of spinning on it.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // Holds `sock` if there is room, making room by closing the connection that has waited longest
  // for its request: a person's client sends its request as soon as it connects.
  void admit(socket_t sock) {
    std::unique_lock lock(mutex_);
    if (held_.size() >= static_cast<size_t>(max_connections)) {
      auto oldest = held_.end();
      for (auto c = held_.begin(); c != held_.end(); ++c)
        if (!c->answering && (oldest == held_.end() || c->since < oldest->since))
          oldest = c;
      if (oldest != held_.end()) {
        // Its thread wakes to end of file and closes it: the descriptor stays its own.
        ::shutdown(oldest->sock, SHUT_RDWR);
        held_.erase(oldest);
      }
    }
    if (stopping_ || held_.size() >= static_cast<size_t>(max_connections)) {
      lock.unlock();
      refuse(sock);
      return;
    }
    held_.push_back({sock, steady::now()});
    ready_.push_back(sock);
    lock.unlock();
    wake_.notify_one();
  }

  void work() {
    for (;;) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
      if (ready_.empty())
        return;
      const socket_t sock = ready_.front();
      ready_.pop_front();
      lock.unlock();
      serve(sock);
    }
  }

  void serve(socket_t sock) {
    current_ = sock;
    deadline_stream stream(sock);
    for (int n = 1; n <= keep_alive_max_requests; ++n) {
      stream.expect_request(steady::now() + request_deadline);
      bool closed_by_client = false;
      const bool last = n == keep_alive_max_requests || stopping_;
      if (!process_request(stream, last, closed_by_client, nullptr) || closed_by_client || last ||
          stream.late() || !wait_again(sock))
        break;
    }
    std::lock_guard lock(mutex_);
    if (auto c = find(sock); c != held_.end())
      held_.erase(c);
    ::close(sock); // under the lock: no shutdown() elsewhere can reach a reused descriptor
  }

  // After an answer: the connection waits for its next request, unless closed meanwhile.
  bool wait_again(socket_t sock) {
    std::lock_guard lock(mutex_);
    const auto c = find(sock);
    if (c == held_.end() || stopping_)
      return false;
    c->answering = false;
    c->since = steady::now();
    return true;
  }

  // Stops accepting, closes the waiting connections, lets the answers finish, joins.
  void finish() {
    const socket_t listening = svr_sock_.exchange(INVALID_SOCKET);
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      for (const auto& c : held_)
        if (!c.answering)
          ::shutdown(c.sock, SHUT_RDWR);
    }
    wake_.notify_all();
    if (listening != INVALID_SOCKET)
      ::shutdown(listening, SHUT_RDWR); // wakes accept()
    if (acceptor_.joinable())
      acceptor_.join();
    for (auto& w : workers_)
      w.join();
    workers_.clear();
    if (listening != INVALID_SOCKET)
      ::close(listening);
  }

  std::vector<connection>::iterator find(socket_t sock) {
    return std::find_if(held_.begin(), held_.end(), [&](auto& c) { return c.sock == sock; });
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<connection> held_; // max_connections at most
  std::deque<socket_t> ready_;   // held, not yet taken by a thread
  std::atomic<bool> stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
  // The connection this thread serves, for answering(): handlers run on it.
  static inline thread_local socket_t current_ = INVALID_SOCKET;
};

} // namespace

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

void check_exposure(const server_options& options) {
  if (!is_loopback(options.host) && options.token.empty())
    throw input_error(options.origin + ".host",
                      fmt::format("serving on '{}' (not loopback) needs a token", options.host),
                      fmt::format("set {0}.token or PEDAGOGY_INSPECT_TOKEN, or keep {0}.host = "
                                  "\"127.0.0.1\" and reach it over an SSH tunnel",
                                  options.origin));
}

struct server::impl {
  guarded_server server;
  int port = 0;
  std::string host;
};

server::server(const server_options& options, handler handle) : impl_(std::make_unique<impl>()) {
  check_exposure(options);
  const auto where = options.origin + ".host";
  auto& s = impl_->server;
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second job bind the
  // same port and share its requests at random instead of failing.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.set_payload_max_length(max_body_bytes);
  const auto token = options.token;
  s.Get(".*", [&s, handle, token](const httplib::Request& request, httplib::Response& reply) {
    s.answering();
    if (!authorised(request, token)) {
      reply.status = 401;
      reply.set_header("WWW-Authenticate", "Bearer");
      reply.set_content("a token is required: Authorization: Bearer <token>, or ?token=<token>\n",
                        "text/plain; charset=utf-8");
      return;
    }
    query q;
    for (const auto& [key, value] : request.params)
      q[key] = value;
    response r;
    try {
      r = handle(request.path, q);
    } catch (const std::exception& e) {
      r = {500, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
    }
    reply.status = r.status;
    reply.set_header("Cache-Control", "no-store");
    reply.set_content(r.body, r.content_type.c_str());
  });
  auto read_only = [](const httplib::Request&, httplib::Response& reply) {
    reply.status = 405;
    reply.set_header("Allow", "GET, HEAD");
    reply.set_content("read-only: GET only\n", "text/plain; charset=utf-8");
  };
  s.Post(".*", read_only);
  s.Put(".*", read_only);
  s.Delete(".*", read_only);
  s.Patch(".*", read_only);

  const int port = options.port == 0
                     ? s.bind_to_any_port(options.host)
                     : (s.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port <= 0)
    throw input_error(options.port == 0 ? where : options.origin + ".port",
                      fmt::format("cannot listen on {}:{} (in use, or not an address of this "
                                  "machine)",
                                  options.host, options.port),
                      "choose another inspect.port (0 = any free port) or inspect.host");
  impl_->port = port;
  impl_->host = options.host;
  s.start();
}

server::~server() = default; // guarded_server's destructor stops and joins

int server::port() const {
  return impl_->port;
}

std::string server::url() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}", v6 ? "[" : "", impl_->host, v6 ? "]" : "", impl_->port);
}

std::string get(const std::string& host, int port, const std::string& path,
                const std::string& token, double timeout_s) {
  httplib::Client client(host, port);
  const auto seconds = static_cast<time_t>(timeout_s);
  const auto micros = static_cast<time_t>((timeout_s - static_cast<double>(seconds)) * 1e6);
  client.set_connection_timeout(seconds, micros);
  client.set_read_timeout(seconds, micros);
  httplib::Headers headers;
  if (!token.empty())
    headers.emplace("Authorization", "Bearer " + token);
  auto result = client.Get(path.c_str(), headers);
  if (!result)
    throw std::runtime_error(fmt::format("cannot reach {}:{} ({} error; hint: is the job still "
                                         "running, and is this the address it printed?)",
                                         host, port, httplib::to_string(result.error())));
  if (result->status == 401)
    throw std::runtime_error(fmt::format("{}:{} refused the request: it needs a token (--token "
                                         "or PEDAGOGY_INSPECT_TOKEN)",
                                         host, port));
  if (result->status != 200)
    throw std::runtime_error(
      fmt::format("{}:{}{} answered HTTP {}: {}", host, port, path, result->status, result->body));
  return result->body;
}

} // namespace pedagogy::http
