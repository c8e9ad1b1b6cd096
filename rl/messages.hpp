// The plain messages of a training step: what a generator is asked and answers, and the
// training sequences a step hands the learner. No CAF here: actors/protocol.hpp makes them
// messages (their inspect() and type ids), so the step's logic (rl/) can be tested without actors.
#pragma once

#include "models/serving/session_history.hpp"
#include "models/text/chat_message.hpp"
#include "models/training/training_sequence.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pedagogy::actors {

// A request to a generator. A session's first request carries its whole dialog; later ones only
// the messages new since its last turn (the generator keeps the exact tokens).
struct generate_request {
  std::string session;                        // "" = a one-off prompt
  bool open_session = false;                  // true: start `session`; false: continue it
  std::vector<models::chat_message> messages; // rendered with the model's chat format
  std::vector<int32_t> tokens;                // raw prompt ids instead, when `messages` is empty
  bool add_generation_prompt = true;
  double temperature = 1.0; // 0 = greedy
  int64_t top_k = 0;        // 0 = off
  double top_p = 1.0;       // 1 = off
  uint64_t seed = 0;        // sample i uses seed + i
  int64_t max_new_tokens = 256;
  int64_t n = 1; // samples of the same prompt
  std::vector<std::string> stop_strings;
  std::string forced_prefix; // text every sample starts with (e.g. "<think>")
};

// One sample.
struct generated_text {
  std::vector<int32_t> tokens;  // exact sampled ids, end-of-turn token included
  std::vector<float> logprobs;  // log_softmax(logits / T) per token
  std::vector<uint8_t> sampled; // 1 = sampled, 0 = forced
  std::string text;             // without the end-of-turn token or stop string
  std::string finish_reason;    // "stop", "length" or "cancelled"
  int64_t weights_version = 0;
  // Tokens generated, end-of-turn included, when `tokens` is empty (an HTTP endpoint returns no
  // ids, only its usage figures or a count by the role's tokenizer); 0 = unknown.
  int64_t token_count = 0;
  // The last of `tokens` is the stop token that ended the sample, not content; false for a stop
  // string, which ends a sample without one.
  bool stop_token = false;
};

struct generate_reply {
  std::vector<generated_text> completions; // n of them
};

// A session's exact token history, returned when it is closed.
using token_history = models::session_history;

// The dialogs of one step as training sequences, advantages included.
struct rollout_batch {
  std::vector<models::training_sequence> sequences;
};

} // namespace pedagogy::actors
