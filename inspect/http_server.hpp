// A small read-only HTTP server for live inspection (cpp-httplib underneath): GET and HEAD only,
// and a bearer token that every request must carry when one is set. It refuses to listen on an
// address other than loopback without a token, so that nothing about a run is exposed unless the
// user says so.
//
// Anyone who can connect can open connections before any token is checked, so the server bounds
// what a connection may hold. httplib's own loop queues every accepted connection for a fixed pool
// of threads and lets each wait for its request as long as bytes keep trickling in (its read
// timeout is per recv), so a few idle or slowloris clients starve everyone else. Here httplib
// only parses, routes and writes (Server::process_request); this server accepts on httplib's
// bound socket itself and
//   - gives every held connection a thread of its own, at most `max_connections` of them, so a
//     connection waiting for its client never delays another;
//   - when full, closes the connection that has waited longest for its request to make room, and
//     answers 503 only when every held connection is being answered;
//   - reads each request through a stream with one deadline for the whole request (head and any
//     body), which a client that trickles a byte a second cannot push back;
//   - gives each answer a deadline of its own, and a connection at most a hundred requests.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace pedagogy::http {

// Connections held at once, each with a thread of its own: a browser opens about six per host,
// so this serves a few people and a Prometheus scraper, and 32 mostly idle threads cost little.
inline constexpr int max_connections = 32;
// From accept (or the previous answer) until the request, head and body, has arrived: one
// deadline for the whole request, not per read, so a client that trickles a byte at a time is
// cut off too. It also bounds how long an idle keep-alive connection is held.
inline constexpr std::chrono::seconds request_deadline{5};
// For writing one answer, so that a client that stops reading loses its connection.
inline constexpr std::chrono::seconds answer_deadline{10};
// Requests on one connection before the server closes it, so no client keeps a thread forever.
inline constexpr int keep_alive_max_requests = 100;
// A request body, which a read-only server only reads to ignore: kept small so that a huge one
// cannot fill memory within the request deadline.
inline constexpr size_t max_body_bytes = 8 * 1024;

struct response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using query = std::map<std::string, std::string>;
// Runs on a server thread; must not block for long (the inspector answers within a timeout).
using handler = std::function<response(const std::string& path, const query& query)>;

struct server_options {
  std::string host = "127.0.0.1";
  int port = 0;      // 0 = any free port
  std::string token; // "" = none (loopback only)
  // Where the options came from, for errors ("inspect.host").
  std::string origin = "inspect";
};

// true for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(const std::string& host);

// Throws input_error naming `<origin>.host` for a non-loopback host without a token: what the
// server refuses, for callers that want to refuse it before doing anything else.
void check_exposure(const server_options& options);

class server {
public:
  // Binds and starts serving. Throws input_error naming the option: a non-loopback host without
  // a token, or an address it cannot bind (in use, not this machine's).
  server(const server_options& options, handler handler);
  // Stops listening, closes the connections waiting for a request, lets the answers being
  // written finish, and joins the threads.
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  int port() const;
  // "http://HOST:PORT" as a person would type it.
  std::string url() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// A client GET for `pedagogy inspect` and tests: the body, or throws std::runtime_error saying
// what failed (unreachable, refused token, HTTP status). `timeout_s` bounds connect and read.
std::string get(const std::string& host, int port, const std::string& path,
                const std::string& token = {}, double timeout_s = 5);

} // namespace pedagogy::http
