// GRPO advantages and loss (see grpo.hpp).
#include "models/training/grpo.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>

#include <cmath>

namespace pedagogy::models {

std::vector<double> group_advantages(const std::vector<double>& rewards, int64_t group_size,
                                     bool scale_rewards, double std_eps) {
  PEDAGOGY_CHECK(group_size >= 1 && rewards.size() % static_cast<size_t>(group_size) == 0,
                 "{} rewards do not form groups of {}", rewards.size(), group_size);
  std::vector<double> out(rewards.size());
  const auto g = static_cast<size_t>(group_size);
  for (size_t start = 0; start < rewards.size(); start += g) {
    double mean = 0;
    for (size_t i = 0; i < g; ++i)
      mean += rewards[start + i];
    mean /= static_cast<double>(g);
    double squares = 0;
    for (size_t i = 0; i < g; ++i)
      squares += (rewards[start + i] - mean) * (rewards[start + i] - mean);
    // Unbiased (Bessel) std, as torch.std; a group of one has no spread.
    const double std = g > 1 ? std::sqrt(squares / static_cast<double>(g - 1)) : 0.0;
    for (size_t i = 0; i < g; ++i) {
      const double centred = rewards[start + i] - mean;
      out[start + i] = scale_rewards ? centred / (std + std_eps) : centred;
    }
  }
  return out;
}

grpo_loss grpo_micro_batch(const at::Tensor& logp, const at::Tensor& old_logp,
                           const at::Tensor& ref_logp, const at::Tensor& mask,
                           const at::Tensor& advantages, const grpo_options& options,
                           const batch_shape& shape) {
  PEDAGOGY_CHECK(logp.dim() == 2 && logp.sizes() == old_logp.sizes() &&
                   logp.sizes() == mask.sizes() && advantages.dim() == 1 &&
                   advantages.size(0) == logp.size(0),
                 "grpo_micro_batch: mismatched shapes");
  PEDAGOGY_CHECK(options.beta == 0.0 || (ref_logp.defined() && ref_logp.sizes() == logp.sizes()),
                 "grpo_micro_batch: beta > 0 needs reference log-probs");
  const at::Tensor m = mask.to(logp.scalar_type());
  const at::Tensor a = advantages.to(logp.scalar_type()).unsqueeze(1);
  const double high = options.epsilon_high > 0 ? options.epsilon_high : options.epsilon;

  // Off the mask the log-probs may be anything (an imitated row's are the ped_teacher's): they
  // must not reach the sums as inf * 0 = NaN.
  const at::Tensor on = m > 0;
  const at::Tensor ratio = at::exp(at::where(on, logp - old_logp, at::zeros_like(logp)));
  const at::Tensor unclipped = ratio * a;
  const at::Tensor clipped = at::clamp(ratio, 1.0 - options.epsilon, 1.0 + high) * a;
  const at::Tensor pg = -at::minimum(unclipped, clipped);
  at::Tensor per_token = pg;
  at::Tensor kl;
  if (options.beta != 0.0) {
    const at::Tensor diff = at::where(on, ref_logp - logp, at::zeros_like(logp));
    kl = at::exp(diff) - diff - 1.0;
    per_token = pg + options.beta * kl;
  }

  // Weights that turn sums over this micro-batch into its share of the batch objective.
  const at::Tensor masked = per_token * m;
  at::Tensor objective;
  switch (options.reduce) {
    case aggregation::token_mean:
      objective = masked.sum() / std::max(shape.batch_tokens, 1.0);
      break;
    case aggregation::sequence_mean:
      objective = (masked.sum(1) / m.sum(1).clamp_min(1.0)).sum() /
                  static_cast<double>(std::max<int64_t>(shape.batch_sequences, 1));
      break;
    case aggregation::micro_batch_token_mean:
      objective = masked.sum() / m.sum().clamp_min(1.0) /
                  static_cast<double>(std::max<int64_t>(shape.micro_batches, 1));
      break;
  }

  at::Tensor sums;
  {
    at::NoGradGuard no_grad;
    sums = at::stack({m.sum(), (pg * m).sum(), kl.defined() ? (kl * m).sum() : m.sum() * 0.0,
                      ((clipped < unclipped).to(m.scalar_type()) * m).sum(), (ratio * m).sum()})
             .to(at::kDouble);
  }
  return {objective, sums};
}

grpo_stats grpo_loss::stats() const {
  const at::Tensor host = sums.to(at::kCPU).contiguous();
  const double* v = host.data_ptr<double>();
  return {v[0], v[1], v[2], v[3], v[4]};
}

at::Tensor next_token_logprobs(const at::Tensor& logits, const at::Tensor& ids,
                               double temperature) {
  PEDAGOGY_CHECK(logits.dim() == 3 && ids.dim() == 2 && logits.size(1) == ids.size(1),
                 "next_token_logprobs: logits [B, T, V] and ids [B, T] expected");
  at::Tensor scaled = logits.narrow(1, 0, logits.size(1) - 1).to(at::kFloat);
  if (temperature > 0 && temperature != 1.0)
    scaled = scaled / temperature;
  const at::Tensor next = ids.narrow(1, 1, ids.size(1) - 1).to(at::kLong).unsqueeze(2);
  return at::log_softmax(scaled, 2).gather(2, next).squeeze(2);
}

} // namespace pedagogy::models
