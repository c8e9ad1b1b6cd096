// Rotary position embeddings (see rope.hpp).
#include "models/tensor/rope.hpp"

#include <ATen/ATen.h>

#include <numbers>

namespace pedagogy::models {

at::Tensor rope_inverse_frequencies(const model_config& config) {
  const int64_t D = config.head_dim;
  at::Tensor inv_freq =
    1.0 / at::pow(config.rope_theta, at::arange(0, D, 2, at::kLong).to(at::kFloat) / D); // [D/2]
  if (config.rope_scaling.linear) // position interpolation: positions divided by the factor
    return inv_freq / config.rope_scaling.factor;
  if (!config.rope_scaling.llama3)
    return inv_freq;
  // Llama-3.1: wavelengths beyond the original context are divided by `factor`, short ones kept,
  // and the band in between interpolated smoothly.
  const auto& s = config.rope_scaling;
  const double old_context = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_context / s.low_freq_factor;
  const double high_freq_wavelen = old_context / s.high_freq_factor;
  at::Tensor wavelen = 2 * std::numbers::pi / inv_freq;
  at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  at::Tensor smooth =
    (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  at::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return at::where(medium, smoothed, scaled);
}

rope_tables rope_for_positions(const at::Tensor& inverse_frequencies, const at::Tensor& positions,
                               at::ScalarType dtype) {
  at::Tensor inv = inverse_frequencies.to(positions.device(), at::kFloat);
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv; // [B, T, D/2]
  at::Tensor angles = at::cat({freqs, freqs}, /*dim=*/-1);         // [B, T, D]
  return {angles.cos().to(dtype), angles.sin().to(dtype)};
}

at::Tensor apply_rope(const at::Tensor& x, const rope_tables& rope) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1); // [B,N,T,D]
  return x * rope.cos.unsqueeze(1) + rotated * rope.sin.unsqueeze(1);
}

} // namespace pedagogy::models
