// RMSNorm (Zhang & Sennrich 2019): x / sqrt(mean(x^2) + eps) * weight, computed in float32 and
// cast back before the weight multiplies, exactly as Hugging Face's Qwen2/Llama RMSNorm.
#pragma once

#include <ATen/Tensor.h>

namespace pedagogy::models {

struct rms_norm {
  at::Tensor weight; // [C]
  double eps = 1e-6;

  at::Tensor forward(const at::Tensor& x) const; // [..., C] -> [..., C]
};

} // namespace pedagogy::models
