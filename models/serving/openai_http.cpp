// Chat completions over HTTP (see openai_http.hpp).
#include "models/serving/openai_http.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

namespace pedagogy::models {

namespace {

using steady = std::chrono::steady_clock;

std::chrono::microseconds micros(steady::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d);
}

// Stops a blocking client call at the deadline. cpp-httplib's timeouts bound each read, so a server
// that trickles a byte now and then would otherwise hold the call for ever. stop() only cuts a
// connected socket, so it is repeated until the call returns.
class deadline_watch {
public:
  deadline_watch(httplib::Client& client, steady::time_point deadline)
    : thread_([this, &client, deadline] {
        std::unique_lock lock{mutex_};
        if (wake_.wait_until(lock, deadline, [this] { return done_; }))
          return;
        fired_ = true;
        do
          client.stop();
        while (!wake_.wait_for(lock, std::chrono::milliseconds(20), [this] { return done_; }));
      }) {}
  deadline_watch(const deadline_watch&) = delete;
  deadline_watch& operator=(const deadline_watch&) = delete;
  ~deadline_watch() {
    finish();
    thread_.join();
  }
  // Ends the watch; true when the deadline cut the call.
  bool finish() {
    std::lock_guard guard{mutex_};
    done_ = true;
    wake_.notify_all();
    return fired_;
  }

private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false, fired_ = false;
  std::thread thread_; // last: it starts once the members it uses exist
};

// What to check when the server refused a request (a status other than 200, 429 and 5xx).
std::string refusal_hint(int status, const std::string& body, const post_options& o) {
  if (body.find("top_k") != std::string::npos)
    return fmt::format(" (hint: set {}.openai.send_top_k = false for an endpoint that does "
                       "not take top_k)",
                       o.role);
  if (status == 401 || status == 403)
    return fmt::format(" (hint: the server refused the key: check {}.openai.api_key_env)", o.role);
  if (status >= 300 && status < 400)
    return fmt::format(" (hint: the server redirects; set {}.openai.base_url to the address "
                       "it redirects to)",
                       o.role);
  return fmt::format(" (hint: check that {}.openai.base_url ends in /v1 and that "
                     "{}.openai.model = \"{}\" is a model the server serves)",
                     o.role, o.role, o.model);
}

} // namespace

http_endpoint chat_completions_endpoint(const std::string& base_url, const std::string& role) {
  auto scheme_end = base_url.find("://");
  if (base_url.rfind("http://", 0) != 0 && base_url.rfind("https://", 0) != 0)
    throw input_error(role + ".openai.base_url",
                      fmt::format("'{}' is not an http(s) URL", base_url),
                      "write it as http://HOST:PORT/v1");
  auto path_start = base_url.find('/', scheme_end + 3);
  http_endpoint e;
  e.scheme_host_port = base_url.substr(0, path_start);
  std::string path = path_start == std::string::npos ? "" : base_url.substr(path_start);
  while (!path.empty() && path.back() == '/')
    path.pop_back();
  e.path = path + "/chat/completions";
  return e;
}

post_result post_chat(const http_endpoint& where, const std::string& body, const post_options& o) {
  const auto deadline = steady::now() + std::chrono::duration_cast<steady::duration>(
                                          std::chrono::duration<double>(o.timeout_s));
  std::string key;
  if (!o.api_key_env.empty())
    if (const char* value = std::getenv(o.api_key_env.c_str()))
      key = value;
  const std::string url = where.scheme_host_port + where.path;
  std::string last_error;
  double delay = o.backoff_s;
  int64_t attempts = 0;
  bool timed_out = false;
  for (; attempts <= o.max_retries; ++attempts) {
    if (attempts > 0) {
      const auto wait =
        std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(delay));
      if (steady::now() + wait >= deadline)
        break;                           // no time left for another attempt
      std::this_thread::sleep_for(wait); // retry backoff
      delay *= 2;
    }
    const auto left = deadline - steady::now();
    if (left <= steady::duration::zero()) {
      timed_out = true;
      break;
    }
    httplib::Client client(where.scheme_host_port);
    client.set_connection_timeout(
      micros(std::min(left, std::chrono::duration_cast<steady::duration>(
                              std::chrono::duration<double>(o.connect_timeout_s)))));
    client.set_read_timeout(micros(left));
    client.set_write_timeout(micros(left));
    httplib::Headers headers;
    if (!key.empty())
      headers.emplace("Authorization", "Bearer " + key);
    deadline_watch watch(client, deadline); // after `client`, so it ends first
    auto response = client.Post(where.path, headers, body, "application/json");
    timed_out = watch.finish() && !response;
    if (timed_out) {
      ++attempts;
      break;
    }
    if (!response) {
      last_error = fmt::format("cannot reach {}: {}", url, httplib::to_string(response.error()));
      continue; // connection problems are worth retrying
    }
    if (response->status == 429 || response->status >= 500) {
      last_error =
        fmt::format("HTTP {} from {}: {}", response->status, url, response->body.substr(0, 200));
      continue;
    }
    if (response->status != 200) {
      const std::string hint = refusal_hint(response->status, response->body, o);
      return {false,
              {},
              fmt::format("HTTP {} from {}: {}{}", response->status, url,
                          response->body.substr(0, 300), hint)};
    }
    return {true, response->body, {}};
  }
  if (timed_out)
    return {false,
            {},
            fmt::format("timed out: no complete answer from {} within {}.openai.timeout_s = {} s "
                        "({} attempts{}; hint: raise timeout_s if generations take longer)",
                        url, o.role, o.timeout_s, attempts,
                        last_error.empty() ? "" : ", the one before: " + last_error)};
  return {false,
          {},
          fmt::format("{} (after {} attempts; hint: is the server running at {}?)", last_error,
                      attempts, o.base_url)};
}

void check_openai_endpoint(const std::string& role, const std::string& base_url,
                           const std::string& api_key_env, double timeout_s) {
  const auto where = chat_completions_endpoint(base_url, role);
  const std::string path =
    where.path.substr(0, where.path.size() - std::strlen("/chat/completions")) + "/models";
  httplib::Client client(where.scheme_host_port);
  const auto limit =
    std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(timeout_s));
  client.set_connection_timeout(limit);
  client.set_read_timeout(limit);
  client.set_write_timeout(limit);
  httplib::Headers headers;
  if (!api_key_env.empty())
    if (const char* key = std::getenv(api_key_env.c_str()); key != nullptr && *key != '\0')
      headers.emplace("Authorization", std::string("Bearer ") + key);
  deadline_watch watch(client, steady::now() + std::chrono::duration_cast<steady::duration>(
                                                 std::chrono::duration<double>(timeout_s)));
  const auto response = client.Get(path, headers);
  const bool timed_out = watch.finish() && !response;
  const std::string key = role + ".openai.base_url";
  if (!response)
    throw input_error(key,
                      fmt::format("cannot reach {}{}: {}", where.scheme_host_port, path,
                                  timed_out ? fmt::format("no answer within {:g} s", timeout_s)
                                            : httplib::to_string(response.error())),
                      "start the server first (e.g. vllm serve MODEL --port 8000), or fix the "
                      "address: http://HOST:PORT/v1");
  if (response->status == 401 || response->status == 403)
    throw input_error(key,
                      fmt::format("{}{} refused the request (HTTP {})", where.scheme_host_port,
                                  path, response->status),
                      api_key_env.empty()
                        ? fmt::format("the server wants a key: set {}.openai.api_key_env to the "
                                      "environment variable that holds it",
                                      role)
                        : fmt::format("check the key in ${}", api_key_env));
}

} // namespace pedagogy::models
