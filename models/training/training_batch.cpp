// Training sequences and padded batches (see training_batch.hpp).
#include "models/training/training_batch.hpp"

#include "models/tensor/token_logprobs.hpp"
#include "models/tensor/transformer.hpp"
#include "models/training/grpo.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>

#include <algorithm>

namespace pedagogy::models {

training_sequence from_history(const session_history& history, double advantage) {
  PEDAGOGY_CHECK(history.sampled.size() == history.tokens.size() &&
                   history.logprobs.size() == history.tokens.size(),
                 "a session history with {} tokens, {} flags and {} log-probs",
                 history.tokens.size(), history.sampled.size(), history.logprobs.size());
  training_sequence s;
  s.tokens = history.tokens;
  s.trained = history.sampled;
  s.behaviour_logprobs = history.logprobs;
  s.advantage = advantage;
  // The first token is never predicted, so it cannot be trained.
  if (!s.trained.empty())
    s.trained[0] = 0;
  return s;
}

padded_batch pad(const std::vector<training_sequence>& sequences, size_t begin, size_t end,
                 at::Device device) {
  PEDAGOGY_CHECK(begin < end && end <= sequences.size(), "bad micro-batch [{}, {})", begin, end);
  size_t longest = 2;
  for (size_t i = begin; i < end; ++i)
    longest = std::max(longest, sequences[i].tokens.size());
  const auto rows = static_cast<int64_t>(end - begin);
  const auto length = static_cast<int64_t>(longest);
  at::Tensor ids = at::zeros({rows, length}, at::kLong);
  at::Tensor attention = at::zeros({rows, length}, at::kLong);
  at::Tensor mask = at::zeros({rows, length - 1}, at::kFloat);
  at::Tensor behaviour = at::zeros({rows, length - 1}, at::kFloat);
  at::Tensor advantages = at::zeros({rows}, at::kFloat);
  at::Tensor imitation = at::zeros({rows}, at::kFloat);
  at::Tensor answer = at::zeros({rows, length - 1}, at::kFloat);
  auto id = ids.accessor<int64_t, 2>();
  auto att = attention.accessor<int64_t, 2>();
  auto m = mask.accessor<float, 2>();
  auto b = behaviour.accessor<float, 2>();
  auto ans = answer.accessor<float, 2>();
  double trained = 0, imitated = 0;
  for (size_t i = begin; i < end; ++i) {
    const auto& s = sequences[i];
    PEDAGOGY_CHECK(
      s.trained.size() == s.tokens.size() && s.behaviour_logprobs.size() == s.tokens.size() &&
        (s.answer.empty() || s.answer.size() == s.tokens.size()),
      "a training sequence of {} tokens with {} flags, {} log-probs and {} answer marks",
      s.tokens.size(), s.trained.size(), s.behaviour_logprobs.size(), s.answer.size());
    const auto r = static_cast<int64_t>(i - begin);
    for (size_t t = 0; t < s.tokens.size(); ++t) {
      id[r][static_cast<int64_t>(t)] = s.tokens[t];
      att[r][static_cast<int64_t>(t)] = 1;
      if (t > 0 && s.trained[t]) {
        m[r][static_cast<int64_t>(t) - 1] = 1.0f;
        b[r][static_cast<int64_t>(t) - 1] = s.behaviour_logprobs[t];
        if (s.imitation == 0)
          trained += 1;
      }
      if (t > 0 && !s.answer.empty() && s.answer[t])
        ans[r][static_cast<int64_t>(t) - 1] = 1.0f;
    }
    advantages[r] = static_cast<float>(s.advantage);
    imitation[r] = static_cast<float>(s.imitation);
    if (s.imitation > 0)
      imitated += 1;
  }
  padded_batch out;
  out.ids = ids.to(device);
  out.attention = attention.to(device);
  out.mask = mask.to(device);
  out.behaviour = behaviour.to(device);
  out.advantages = advantages.to(device);
  out.imitation = imitation.to(device);
  out.answer = answer.to(device);
  out.trained_tokens = trained;
  out.imitated_sequences = imitated;
  return out;
}

at::Tensor sequence_logprobs(const transformer& model, const padded_batch& batch,
                             double temperature, int64_t chunk) {
  if (chunk <= 0) // the whole [B, T, V] logits at once (kept to measure what chunking saves)
    return next_token_logprobs(model.forward(batch.ids, batch.attention), batch.ids, temperature);
  const at::Tensor hidden = model.hidden_states(batch.ids, batch.attention, {}, nullptr);
  const int64_t B = hidden.size(0), T = hidden.size(1), C = hidden.size(2);
  // Position t predicts token t + 1.
  const at::Tensor h = hidden.narrow(1, 0, T - 1).reshape({B * (T - 1), C});
  const at::Tensor next = batch.ids.narrow(1, 1, T - 1).reshape({B * (T - 1)});
  return token_logprobs(h, model.lm_head(), next, temperature, chunk).view({B, T - 1});
}

} // namespace pedagogy::models
