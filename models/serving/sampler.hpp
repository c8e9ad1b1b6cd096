// Choosing the next token from logits: greedy, or temperature with top-k and top-p (nucleus)
// truncation, driven by a per-request seeded generator so a request samples the same tokens on
// every run and platform.
//
// The returned log-prob is that of the token under the temperature-scaled full softmax,
// log_softmax(logits / T), before truncation: the learner recomputes exactly this quantity, so
// behaviour and learner log-probs agree for the same weights (T = 0 uses T = 1).
//
// choose_tokens() is the fast path the engine uses: every row of a step at once, on the logits'
// device, with one copy of the choices to the host. sample_token() and token_logprob() are the
// readable one-row reference it is tested against; given the same uniform draw, both pick the
// same token (on an accelerator, up to rounding at the edge of a token's probability bucket).
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

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

// How one row of a batch chooses its token.
struct token_rule {
  int64_t row = 0;          // the logits row it reads
  double temperature = 1.0; // 0 = greedy
  int64_t top_k = 0;        // 0 = off
  double top_p = 1.0;       // 1 = off
  int32_t forced = -1;      // >= 0: this token is taken and only its log-prob computed
  double uniform = 0.0;     // the draw in [0, 1) that picks the token when the row samples
};

// A row that samples: draws its uniform from `rng` only when it will use it (T > 0), exactly as
// sample_token() does, so a request's sequence of draws is the same on either path.
token_rule sampling_rule(int64_t row, double temperature, int64_t top_k, double top_p,
                         sampling_rng& rng);
// A row whose token is given (a forced prefix): only its log-prob under temperature T.
token_rule forced_rule(int64_t row, int32_t token, double temperature);

// logits [R, V] (any float dtype, any device) and one rule per chosen token (several rules may
// read the same row): the choices in rule order. Logits on the CPU are read in place, row by row
// after one batched log_softmax (there a tensor op per step costs more than the loop it
// replaces); on an accelerator this is choose_tokens_on_device().
std::vector<token_choice> choose_tokens(const at::Tensor& logits,
                                        const std::vector<token_rule>& rules);
// The same choices as tensor operations over the whole batch on the logits' device (any device,
// the CPU included, so tests run it): one small copy of the rules to the device and one copy of
// the B tokens and log-probs back.
std::vector<token_choice> choose_tokens_on_device(const at::Tensor& logits,
                                                  const std::vector<token_rule>& rules);

} // namespace pedagogy::models
