// The imitation term of a learner's micro-batch (see imitation.hpp).
#include "models/ped/imitation.hpp"

#include <ATen/ATen.h>

namespace pedagogy::models {

imitation_term imitation_micro_batch(const at::Tensor& logp, const padded_batch& m,
                                     const at::Tensor& imitating, double imitated_in_batch,
                                     const gate_options& gate) {
  imitation_term out;
  const at::Tensor imitation_mask = m.mask * imitating;                   // [B, T - 1]
  const at::Tensor per_row = gated_imitation(logp, imitation_mask, gate); // [B]
  out.objective = (per_row * m.imitation).sum() / imitated_in_batch;
  at::NoGradGuard no_grad;
  const at::Tensor w = imitation_weights(logp, imitation_mask, gate);
  const at::Tensor on = imitation_mask > 0;
  out.sums =
    at::stack({imitation_mask.sum(), w.sum(), (w < 0.5).logical_and(on).sum(), per_row.sum()})
      .to(at::kDouble);
  out.min = at::where(on, w, at::ones_like(w)).min().to(at::kDouble);
  return out;
}

} // namespace pedagogy::models
