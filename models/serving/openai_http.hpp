// Chat completions over HTTP, for generators backed by an OpenAI-compatible server (vLLM, SGLang,
// an API): the endpoint a base URL names, one POST with retries within a deadline, and the cheap
// check that the server answers before anything loads. No actors here: the generator actor
// (actors/openai_generator.hpp) runs each call on a worker of its own and reads the answer.
#pragma once

#include <cstdint>
#include <string>

namespace pedagogy::models {

struct http_endpoint {
  std::string scheme_host_port; // "http://127.0.0.1:8000"
  std::string path;             // "/v1/chat/completions"
};

// The chat-completions endpoint under `base_url` ("http://HOST:PORT/v1"). Throws input_error
// naming `<role>.openai.base_url` for a URL that is not http(s).
http_endpoint chat_completions_endpoint(const std::string& base_url, const std::string& role);

struct post_options {
  double timeout_s = 120.0;       // the whole call: every attempt and every backoff wait
  double connect_timeout_s = 5.0; // per attempt, within timeout_s
  double backoff_s = 0.5;         // first retry delay; doubles each time
  int64_t max_retries = 3;        // after the first attempt (connection errors, 429, 5xx)
  std::string api_key_env;        // environment variable with the key; "" = none
  // For the messages: the role's config section, the served model, the base URL.
  std::string role, model, base_url;
};

struct post_result {
  bool ok = false;
  std::string body;  // the answer (HTTP 200)
  std::string error; // why not, with a hint naming the knob to check
};

// POSTs `body` (JSON) to `where`, retrying connection errors, 429 and 5xx with backoff, all within
// timeout_s (a server that trickles bytes is cut at the deadline). Another status is not retried.
post_result post_chat(const http_endpoint& where, const std::string& body, const post_options& o);

// Before anything loads: a cheap GET of the endpoint's model list (within `timeout_s`). Throws
// input_error naming `<role>.openai.base_url` when the server cannot be reached or refuses the
// key; any other answer (even 404 from a server without /models) counts as reachable.
void check_openai_endpoint(const std::string& role, const std::string& base_url,
                           const std::string& api_key_env, double timeout_s = 5);

} // namespace pedagogy::models
