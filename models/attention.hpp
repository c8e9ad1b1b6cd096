// Multi-head causal self-attention with grouped-query heads (Ainslie et al. 2023), rotary
// positions, optional q/k/v bias (Qwen2) and optional per-head RMSNorm of q and k (Qwen3).
//
// scaled_dot_product() is the fast path (PyTorch's fused kernel on torch 2.x, its composite op on
// 1.13); reference_attention() is the readable softmax(q k^T / sqrt(D) + mask) v that tests hold
// it against.
#pragma once

#include "models/rms_norm.hpp"
#include "models/rope.hpp"

#include <ATen/Tensor.h>

#include <optional>

namespace pedagogy::models {

// Keys and values of the tokens seen so far, for one layer.
struct layer_cache {
  at::Tensor k; // [B, K, S, D]
  at::Tensor v; // [B, K, S, D]
};

struct attention {
  at::Tensor q_proj, k_proj, v_proj, o_proj; // [H*D, C], [K*D, C], [K*D, C], [C, H*D]
  at::Tensor q_bias, k_bias, v_bias;         // [H*D], [K*D], [K*D]; undefined without bias
  std::optional<rms_norm> q_norm, k_norm;    // over D; Qwen3 only
  int64_t heads = 0;                         // H
  int64_t kv_heads = 0;                      // K
  int64_t head_dim = 0;                      // D

  // x [B, T, C]; mask [B, 1, T, S] additive (0 or very negative); a non-null cache receives the
  // new keys and values and supplies the earlier ones. Returns [B, T, C].
  at::Tensor forward(const at::Tensor& x, const rope_tables& rope, const at::Tensor& mask,
                     layer_cache* cache) const;
};

// q [B, H, T, D], k and v [B, H, S, D], mask [B, 1, T, S] -> [B, H, T, D].
at::Tensor scaled_dot_product(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& mask);
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& mask);

} // namespace pedagogy::models
