// A generator backed by an OpenAI-compatible HTTP endpoint (a vLLM or SGLang server, or an API),
// for frozen roles: the same generator_actor interface, answering with text (no token ids or
// log-probs, which only the trained tutor needs). Sessions keep their messages here and send
// the whole dialog each turn, since the endpoint is stateless.
#pragma once

#include "actors/generator_actor.hpp"

#include <chrono>
#include <string>

namespace pedagogy::actors {

struct openai_setup {
  std::string role = "judge";
  std::string base_url;         // e.g. "http://127.0.0.1:8000/v1"
  std::string model;            // model name sent to the endpoint
  std::string api_key_env;      // environment variable with the key; "" = none
  int64_t max_concurrency = 64; // requests in flight at once
  double timeout_s = 120.0;     // per attempt
  int64_t max_retries = 5;      // after the first attempt
  double backoff_s = 0.5;       // first retry delay; doubles each time
};

// Checks the setup (a malformed URL is an input_error) and spawns the generator.
generator_actor spawn_openai_generator(caf::actor_system& system, const openai_setup& setup);

} // namespace pedagogy::actors
