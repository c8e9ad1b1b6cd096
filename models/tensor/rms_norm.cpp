// RMSNorm (see rms_norm.hpp).
#include "models/tensor/rms_norm.hpp"

#include <ATen/ATen.h>

namespace pedagogy::models {

at::Tensor rms_norm::forward(const at::Tensor& x) const {
  at::Tensor h = x.to(at::kFloat);                                        // [..., C]
  h = h * at::rsqrt(h.square().mean(/*dim=*/-1, /*keepdim=*/true) + eps); // [..., C]
  return weight * h.to(x.scalar_type());
}

} // namespace pedagogy::models
