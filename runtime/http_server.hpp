// A small read-only HTTP server for live inspection (cpp-httplib underneath): GET and HEAD only,
// a few worker threads, and a bearer token that every request must carry when one is set. It
// refuses to listen on an address other than loopback without a token, so that nothing about a
// run is exposed unless the user says so.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace pedagogy::http {

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
  int threads = 4;
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
  ~server(); // stops listening and joins the threads
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
