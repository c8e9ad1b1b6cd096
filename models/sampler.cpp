// Token sampling (see sampler.hpp).
#include "models/sampler.hpp"

#include "runtime/seeds.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <vector>

namespace pedagogy::models {

namespace {

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

} // namespace

sampling_rng::sampling_rng(uint64_t seed) {
  for (auto& word : s_)
    word = splitmix64(seed);
}

uint64_t sampling_rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double sampling_rng::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

float token_logprob(const at::Tensor& logits, int32_t token, double temperature) {
  const double t = temperature > 0 ? temperature : 1.0;
  return at::log_softmax(logits.to(at::kFloat) / t, /*dim=*/-1)[token].item<float>();
}

token_choice sample_token(const at::Tensor& logits, double temperature, int64_t top_k, double top_p,
                          sampling_rng& rng) {
  at::Tensor x = logits.to(at::kCPU, at::kFloat).contiguous();
  if (temperature <= 0) {
    const auto token = static_cast<int32_t>(x.argmax().item<int64_t>());
    return {token, at::log_softmax(x, -1)[token].item<float>()};
  }
  at::Tensor logp = at::log_softmax(x / temperature, -1); // [V], the full distribution
  const float* lp = logp.data_ptr<float>();
  const int64_t V = logp.numel();

  // Candidates in descending probability when truncating; all tokens in id order otherwise.
  std::vector<int32_t> candidates;
  if (top_k > 0 || top_p < 1.0) {
    const int64_t k = top_k > 0 ? std::min(top_k, V) : V;
    at::Tensor order = std::get<1>(logp.topk(k, /*dim=*/-1, /*largest=*/true, /*sorted=*/true));
    const int64_t* o = order.data_ptr<int64_t>();
    candidates.assign(o, o + k);
    if (top_p < 1.0) {
      // The smallest prefix whose mass reaches top_p (the token that crosses it is kept).
      double mass = 0.0;
      size_t keep = 0;
      while (keep < candidates.size() && mass < top_p)
        mass += std::exp(static_cast<double>(lp[candidates[keep++]]));
      candidates.resize(std::max<size_t>(keep, 1));
    }
  } else {
    candidates.resize(static_cast<size_t>(V));
    std::iota(candidates.begin(), candidates.end(), 0);
  }
  double total = 0.0;
  for (int32_t c : candidates)
    total += std::exp(static_cast<double>(lp[c]));
  double u = rng.uniform() * total;
  int32_t chosen = candidates.back();
  for (int32_t c : candidates) {
    u -= std::exp(static_cast<double>(lp[c]));
    if (u < 0) {
      chosen = c;
      break;
    }
  }
  return {chosen, lp[chosen]};
}

} // namespace pedagogy::models
