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
#pragma once

#include "models/rms_norm.hpp"
#include "models/rope.hpp"
#include "models/sequence_kv.hpp"

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

// Rows [begin, begin + length) of a packed batch belong to the sequence whose cache is `kv`.
struct packed_segment {
  sequence_kv* kv = nullptr;
  int64_t begin = 0;
  int64_t length = 0;
};

// What every layer's attention needs to know about a packed batch besides its own keys and
// values, built once per forward on the model's device instead of once per layer.
struct packed_layout {
  std::vector<packed_segment> segments;
  // Per segment: the additive causal mask [1, 1, L, S] of a chunk of L != 1 rows against its
  // S = cached + L keys; undefined for a single row.
  std::vector<at::Tensor> masks;
  // Single-row segments of one pool (the engine's decode rows), attended together when there are
  // two or more; `pool` is null otherwise.
  kv_pool* pool = nullptr;
  std::vector<uint8_t> pooled; // per segment: 1 = one of those rows
  at::Tensor slot;             // [B] their slots in the pool
  at::Tensor position;         // [B] each one's cached length: where its new key goes
  at::Tensor row;              // [B] their rows in the batch
  at::Tensor past_end;         // [B, 1, 1, S] true for keys past a row's own, S = longest + 1
};

// `activations`: the dtype and device of the hidden states.
packed_layout layout_packed(const std::vector<packed_segment>& segments,
                            at::TensorOptions activations);

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

  // Packed rows of many sequences, x [1, N, C] with rope for [1, N]: the projections run over all
  // N rows at once, attention per segment against that sequence's cache (extended, not advanced).
  at::Tensor forward_packed(const at::Tensor& x, const rope_tables& rope,
                            const packed_layout& layout, size_t layer) const;

private:
  struct qkv {
    at::Tensor q; // [B, H, T, D]
    at::Tensor k; // [B, K, T, D]
    at::Tensor v; // [B, K, T, D]
  };
  qkv project(const at::Tensor& x, const rope_tables& rope) const;
  void attend_decode_rows(const packed_layout& layout, size_t layer, const at::Tensor& q,
                          const at::Tensor& k, const at::Tensor& v, at::Tensor& rows) const;
};

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
