// Rotary position embeddings (Su et al. 2021, RoFormer), in Hugging Face's "rotate half" layout:
// x * cos + rotate_half(x) * sin, with the frequencies duplicated over both halves of the head.
// Llama-3.1's frequency scaling ("llama3" rope_scaling) stretches the long wavelengths.
#pragma once

#include "models/weights/model_config.hpp"

#include <ATen/Tensor.h>

namespace pedagogy::models {

// Inverse frequencies theta^(-2i/D), i < D/2, float32, scaled for llama3 when configured.
at::Tensor rope_inverse_frequencies(const model_config& config); // [D/2]

struct rope_tables {
  at::Tensor cos; // [B, T, D]
  at::Tensor sin; // [B, T, D]
};

// Tables for token positions [B, T], computed in float32 and cast to `dtype`.
rope_tables rope_for_positions(const at::Tensor& inverse_frequencies, const at::Tensor& positions,
                               at::ScalarType dtype);

at::Tensor apply_rope(const at::Tensor& x, const rope_tables& rope); // [B, N, T, D] -> same

} // namespace pedagogy::models
