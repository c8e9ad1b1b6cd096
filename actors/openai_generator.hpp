// A generator backed by an OpenAI-compatible HTTP endpoint (a vLLM or SGLang server, or an API),
// for frozen roles: the same generator_actor interface, answering with text (no token ids or
// log-probs, which only the trained tutor needs) and a token count per sample, so the dialog's
// token budget and length penalty see these roles too. Sessions keep their messages here and
// send the whole dialog each turn, since the endpoint is stateless; a request changes its session
// only when it succeeds, so a failed request can be sent again as it was.
#pragma once

#include "actors/generator_actor.hpp"

#include <chrono>
#include <filesystem>
#include <string>

namespace pedagogy::actors {

struct openai_setup {
  std::string role = "judge";
  std::string base_url;           // e.g. "http://127.0.0.1:8000/v1"
  std::string model;              // model name sent to the endpoint
  std::string api_key_env;        // environment variable with the key; "" = none
  int64_t max_concurrency = 64;   // requests in flight at once
  double timeout_s = 120.0;       // the whole call: every attempt and every backoff wait
  int64_t max_retries = 3;        // after the first attempt (connection errors, 429, 5xx)
  double backoff_s = 0.5;         // first retry delay; doubles each time
  double connect_timeout_s = 5.0; // per attempt, within timeout_s
  bool send_top_k = true;         // send top_k (vLLM and SGLang take it; OpenAI's API refuses it)
  // A tokenizer.json counting the tokens of answers whose server reports no usage; "" = none.
  std::filesystem::path tokenizer;
};

// Checks the setup (a malformed URL or an unreadable tokenizer is an input_error) and spawns the
// generator.
generator_actor spawn_openai_generator(caf::actor_system& system, const openai_setup& setup);

} // namespace pedagogy::actors
