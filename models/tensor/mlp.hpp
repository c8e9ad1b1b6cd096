// The SwiGLU feed-forward block (Shazeer 2020): down(silu(gate(x)) * up(x)).
#pragma once

#include <ATen/Tensor.h>

namespace pedagogy::models {

struct mlp {
  at::Tensor gate_proj; // [F, C]
  at::Tensor up_proj;   // [F, C]
  at::Tensor down_proj; // [C, F]

  at::Tensor forward(const at::Tensor& x) const; // [B, T, C] -> [B, T, C]
};

} // namespace pedagogy::models
