// A session's exact token history, as the engine keeps it and the generator actor returns it.
// Plain vectors (no tensors), so it can travel in actor messages.
#pragma once

#include <cstdint>
#include <vector>

namespace pedagogy::models {

// With n = 1 the generated tokens join the history; with n > 1 only the prompt does (the
// samples are branches).
struct session_history {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> sampled;  // 1 where the engine sampled the token
  std::vector<float> logprobs;   // 0 where it did not
  std::vector<int64_t> versions; // weights version of sampled tokens, -1 elsewhere
};

} // namespace pedagogy::models
