// The inspection server and its client (see http_server.hpp).
#include "runtime/http_server.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <thread>

namespace pedagogy::http {

namespace {

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
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::string host;
};

server::server(const server_options& options, handler handle) : impl_(std::make_unique<impl>()) {
  check_exposure(options);
  const auto where = options.origin + ".host";
  auto& s = impl_->server;
  const int threads = options.threads;
  s.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second job bind the
  // same port and share its requests at random instead of failing.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  s.set_keep_alive_timeout(2);
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);
  const auto token = options.token;
  s.Get(".*", [handle, token](const httplib::Request& request, httplib::Response& reply) {
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
  auto* state = impl_.get();
  impl_->thread = std::thread([state] { state->server.listen_after_bind(); });
  // stop() does nothing until the loop runs: the destructor could otherwise wait forever.
  for (int i = 0; i < 5000 && !s.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

server::~server() {
  impl_->server.stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

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
