// Multi-head causal self-attention with grouped-query heads (Ainslie et al. 2023), rotary
// positions, optional q/k/v bias (Qwen2; Llama and Qwen3 with attention_bias), optional o_proj
// bias (Llama and Qwen3 with attention_bias) and optional per-head RMSNorm of q and k (Qwen3).
//
// The softmax always runs in float32 and its probabilities are rounded back to the activations'
// dtype before they weigh the values, as transformers' eager attention does
// (softmax(scores, dtype=torch.float32).to(query.dtype)), so bf16 models match it.
//
// scaled_dot_product() is the fast path (PyTorch's fused kernel on torch 2.x; on 1.13, whose only
// op is a slow private composite, the plain math); reference_attention() is the readable
// softmax(q k^T / sqrt(D) + mask) v that tests hold it against.
//
// The engine's path over paged KV caches is models/serving/packed_forward.hpp.
#pragma once

#include "models/tensor/rms_norm.hpp"
#include "models/tensor/rope.hpp"

#include <ATen/Tensor.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace pedagogy::models {

// Keys and values of the tokens seen so far, for one layer.
struct layer_cache {
  at::Tensor k; // [B, K, S, D]
  at::Tensor v; // [B, K, S, D]
};

struct attention {
  at::Tensor q_proj, k_proj, v_proj, o_proj; // [H*D, C], [K*D, C], [K*D, C], [C, H*D]
  at::Tensor q_bias, k_bias, v_bias;         // [H*D], [K*D], [K*D]; undefined without bias
  at::Tensor o_bias;                         // [C]; undefined without bias
  std::optional<rms_norm> q_norm, k_norm;    // over D; Qwen3 only
  int64_t heads = 0;                         // H
  int64_t kv_heads = 0;                      // K
  int64_t head_dim = 0;                      // D

  // x [B, T, C]; mask [B, 1, T, S] additive (0 or very negative); a non-null cache receives the
  // new keys and values and supplies the earlier ones. Returns [B, T, C].
  at::Tensor forward(const at::Tensor& x, const rope_tables& rope, const at::Tensor& mask,
                     layer_cache* cache) const;

  struct qkv {
    at::Tensor q; // [B, H, T, D]
    at::Tensor k; // [B, K, T, D]
    at::Tensor v; // [B, K, T, D]
  };
  // x [B, T, C] -> q, k, v with bias, per-head norm and rotary positions applied.
  qkv project(const at::Tensor& x, const rope_tables& rope) const;
};

// Each of the K key/value heads serves H / K query heads: [B, K, S, D] -> [B, K*groups, S, D].
at::Tensor repeat_kv(const at::Tensor& x, int64_t groups);

// The value masked attention scores get: the dtype's most negative finite number (as transformers
// does), so a row with nothing to attend to stays finite instead of turning into NaN.
double lowest_finite(at::ScalarType dtype);

// Softmax over the last dimension in float32, returned in the dtype of `scores`.
at::Tensor softmax_fp32(const at::Tensor& scores);

// q [B, H, T, D], k and v [B, H, S, D], mask [B, 1, T, S] -> [B, H, T, D].
at::Tensor scaled_dot_product(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& mask);
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& mask);

} // namespace pedagogy::models
