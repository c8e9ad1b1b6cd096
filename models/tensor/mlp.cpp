// SwiGLU feed-forward (see mlp.hpp).
#include "models/tensor/mlp.hpp"

#include <ATen/ATen.h>

namespace pedagogy::models {

at::Tensor mlp::forward(const at::Tensor& x) const {
  at::Tensor gated = at::silu(at::linear(x, gate_proj)) * at::linear(x, up_proj); // [B, T, F]
  return at::linear(gated, down_proj);                                            // [B, T, C]
}

} // namespace pedagogy::models
