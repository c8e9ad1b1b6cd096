// Pedagogical RL numerics (see ped.hpp).
#include "models/ped/ped.hpp"

#include "models/tensor/transformer.hpp"
#include "models/training/training_batch.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace pedagogy::models {

at::Tensor soft_max_gap(const at::Tensor& gaps, const at::Tensor& mask, double beta) {
  PEDAGOGY_CHECK(gaps.dim() == 2 && gaps.sizes() == mask.sizes(),
                 "soft_max_gap: gaps and mask [B, T] expected");
  PEDAGOGY_CHECK(beta >= 0, "soft_max_gap: beta must be >= 0, not {}", beta);
  const at::Tensor d = gaps.to(at::kFloat);
  const at::Tensor m = mask.to(at::kFloat);
  const at::Tensor count = m.sum(1);
  const at::Tensor any = count > 0;
  at::Tensor pen;
  if (beta == 0) {
    pen = (d * m).sum(1) / count.clamp_min(1.0);
  } else {
    // logsumexp over the masked positions only, in float32: -inf elsewhere.
    const at::Tensor s =
      at::where(m > 0, beta * d, at::full_like(d, -std::numeric_limits<float>::infinity()));
    pen = (at::logsumexp(s, 1) - count.clamp_min(1.0).log()) / beta;
  }
  return at::where(any, pen, at::zeros_like(pen));
}

at::Tensor learnability(const at::Tensor& gaps, const at::Tensor& mask, const spike_options& o) {
  const at::Tensor pen = soft_max_gap(gaps, mask, o.beta);
  const at::Tensor g = at::exp(-o.lambda * pen);
  return at::where(mask.to(at::kFloat).sum(1) > 0, g, at::zeros_like(g));
}

namespace {

// The gap and log-prob of `next` [B, c] under logits [B, c, V].
token_gaps gaps_at(const at::Tensor& logits, const at::Tensor& next, double temperature) {
  at::Tensor z = logits.to(at::kFloat);
  if (temperature > 0 && temperature != 1.0)
    z = z / temperature;
  const at::Tensor tok = z.gather(2, next.to(at::kLong).unsqueeze(2)).squeeze(2);
  const at::Tensor top = std::get<0>(z.max(2));
  return {(top - tok).clamp_min(0.0), tok - at::logsumexp(z, 2)};
}

} // namespace

token_gaps next_token_gaps(const at::Tensor& logits, const at::Tensor& ids, double temperature) {
  PEDAGOGY_CHECK(logits.dim() == 3 && ids.dim() == 2 && logits.size(1) == ids.size(1) &&
                   ids.size(1) >= 2,
                 "next_token_gaps: logits [B, T, V] and ids [B, T] with T >= 2 expected");
  const int64_t t = ids.size(1) - 1;
  return gaps_at(logits.narrow(1, 0, t), ids.narrow(1, 1, t), temperature);
}

token_gaps score_tokens(const transformer& model, const padded_batch& batch, double temperature,
                        int64_t chunk) {
  PEDAGOGY_CHECK(chunk >= 1, "score_tokens: chunk must be >= 1");
  at::NoGradGuard no_grad;
  const at::Tensor hidden = model.hidden_states(batch.ids, batch.attention, {}, nullptr);
  const int64_t positions = batch.ids.size(1) - 1;
  std::vector<at::Tensor> gap, logp;
  for (int64_t start = 0; start < positions; start += chunk) {
    const int64_t n = std::min(chunk, positions - start);
    const auto part = gaps_at(model.logits(hidden.narrow(1, start, n)),
                              batch.ids.narrow(1, start + 1, n), temperature);
    gap.push_back(part.gap);
    logp.push_back(part.logp);
  }
  return {at::cat(gap, 1), at::cat(logp, 1)};
}

std::vector<ped_score> summarise_scores(const token_gaps& scored, const at::Tensor& mask,
                                        const at::Tensor& answer, const spike_options& o) {
  PEDAGOGY_CHECK(scored.gap.sizes() == mask.sizes() && scored.logp.sizes() == mask.sizes() &&
                   (!answer.defined() || answer.sizes() == mask.sizes()),
                 "summarise_scores: mismatched shapes");
  at::NoGradGuard no_grad;
  at::Tensor d = scored.gap.to(at::kFloat);
  if (o.max_gap > 0)
    d = d.clamp_max(o.max_gap);
  const at::Tensor m = mask.to(at::kFloat);
  const at::Tensor count = m.sum(1);
  const at::Tensor a = answer.defined() ? answer.to(at::kFloat) * m : at::zeros_like(m);
  const at::Tensor a_count = a.sum(1);
  // One [B, 9] table, moved to the host once.
  const at::Tensor table =
    at::stack({learnability(d, m, o), soft_max_gap(d, m, o.beta),
               (d * m).sum(1) / count.clamp_min(1.0), (d * m).amax(1),
               (-scored.logp.to(at::kFloat) * m).sum(1) / count.clamp_min(1.0), count,
               (d * a).sum(1) / a_count.clamp_min(1.0), a_count, (d * a).amax(1)},
              1)
      .to(at::kCPU, at::kDouble)
      .contiguous();
  const auto t = table.accessor<double, 2>();
  std::vector<ped_score> out(static_cast<size_t>(table.size(0)));
  for (int64_t r = 0; r < table.size(0); ++r) {
    auto& s = out[static_cast<size_t>(r)];
    s.g = t[r][0];
    s.soft_max_gap = t[r][1];
    s.mean_gap = t[r][2];
    s.max_gap = t[r][3];
    s.nll = t[r][4];
    s.tokens = t[r][5];
    s.answer_gap = t[r][7] > 0 ? t[r][6] : -1.0;
    s.answer_max_gap = t[r][7] > 0 ? t[r][8] : -1.0;
  }
  return out;
}

at::Tensor imitation_weights(const at::Tensor& logp, const at::Tensor& mask,
                             const gate_options& o) {
  PEDAGOGY_CHECK(logp.sizes() == mask.sizes(), "imitation_weights: mismatched shapes");
  const at::Tensor m = mask.to(logp.scalar_type());
  if (!o.gating)
    return m;
  return at::sigmoid(o.kappa * (logp.detach() - o.gamma)) * m;
}

at::Tensor gated_imitation(const at::Tensor& logp, const at::Tensor& mask, const gate_options& o) {
  const at::Tensor w = imitation_weights(logp, mask, o);
  const at::Tensor den = w.sum(1);
  // A token whose log-prob underflowed to -inf has weight 0: 0 x inf must not become NaN.
  const at::Tensor nll = at::where(w > 0, -logp, at::zeros_like(logp));
  const at::Tensor per_row = (w * nll).sum(1) / den.clamp_min(1e-12);
  return at::where(den > 0, per_row, at::zeros_like(per_row));
}

} // namespace pedagogy::models
