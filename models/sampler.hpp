// Choosing the next token from logits: greedy, or temperature with top-k and top-p (nucleus)
// truncation, driven by a per-request seeded generator so a request samples the same tokens on
// every run and platform.
//
// The returned log-prob is that of the token under the temperature-scaled full softmax,
// log_softmax(logits / T), before truncation: the learner recomputes exactly this quantity, so
// behaviour and learner log-probs agree for the same weights (T = 0 uses T = 1).
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>

namespace pedagogy::models {

// splitmix64-seeded xoshiro256**: small, fast, identical everywhere (std:: distributions are not).
class sampling_rng {
public:
  explicit sampling_rng(uint64_t seed);
  uint64_t next();
  double uniform(); // [0, 1)

private:
  uint64_t s_[4];
};

struct token_choice {
  int32_t token = 0;
  float logprob = 0.0f;
};

// logits [V] (any float dtype, any device). temperature 0 = greedy; top_k 0 = off; top_p 1 = off.
token_choice sample_token(const at::Tensor& logits, double temperature, int64_t top_k, double top_p,
                          sampling_rng& rng);

// The log-prob of `token` under log_softmax(logits / T) (T = 0 counts as 1).
float token_logprob(const at::Tensor& logits, int32_t token, double temperature);

} // namespace pedagogy::models
