// Grouped-query causal self-attention (see attention.hpp).
#include "models/attention.hpp"

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace pedagogy::models {

namespace {

// Each of the K key/value heads serves H / K query heads.
at::Tensor repeat_kv(const at::Tensor& x, int64_t groups) { // [B, K, S, D] -> [B, K*groups, S, D]
  if (groups == 1)
    return x;
  const auto B = x.size(0), K = x.size(1), S = x.size(2), D = x.size(3);
  return x.unsqueeze(2).expand({B, K, groups, S, D}).reshape({B, K * groups, S, D});
}

// One new token against a sequence's whole cache: every key is visible, so no mask is needed,
// and the query heads of each group share their key/value head through a batched matmul
// instead of copies of it. q [1, H, 1, D], keys and values [K, S, D] -> [1, H, 1, D].
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& keys, const at::Tensor& values) {
  const int64_t K = keys.size(0), H = q.size(1), D = q.size(3);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor grouped = q.reshape({K, H / K, D});                                   // [K, G, D]
  at::Tensor probs = softmax_fp32(at::bmm(grouped, keys.transpose(1, 2)) * scale); // [K, G, S]
  return at::bmm(probs, values).view({1, H, 1, D});                                // [1, H, 1, D]
}

} // namespace

at::Tensor scaled_dot_product(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& mask) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false);
#else
  // LibTorch 1.13 has only a private composite op, measured 3.5x slower on the CPU than the
  // plain math below (8 heads x 512 x 512: 44 ms vs 12.7 ms), so the math is the fast path there.
  return reference_attention(q, k, v, mask);
#endif
}

at::Tensor softmax_fp32(const at::Tensor& scores) {
  if (scores.scalar_type() == at::kFloat || scores.scalar_type() == at::kDouble)
    return at::softmax(scores, /*dim=*/-1);
  return at::softmax(scores, /*dim=*/-1, /*dtype=*/at::kFloat).to(scores.scalar_type());
}

at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& mask) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1)) * scale + mask; // [B, H, T, S]
  return at::matmul(softmax_fp32(scores), v);                            // [B, H, T, D]
}

attention::qkv attention::project(const at::Tensor& x, const rope_tables& rope) const {
  const auto B = x.size(0), T = x.size(1);
  at::Tensor q = at::linear(x, q_proj, q_bias).view({B, T, heads, head_dim});    // [B, T, H, D]
  at::Tensor k = at::linear(x, k_proj, k_bias).view({B, T, kv_heads, head_dim}); // [B, T, K, D]
  at::Tensor v = at::linear(x, v_proj, v_bias).view({B, T, kv_heads, head_dim}); // [B, T, K, D]
  if (q_norm) {
    q = q_norm->forward(q);
    k = k_norm->forward(k);
  }
  return {apply_rope(q.transpose(1, 2), rope), // [B, H, T, D]
          apply_rope(k.transpose(1, 2), rope), // [B, K, T, D]
          v.transpose(1, 2)};                  // [B, K, T, D]
}

at::Tensor attention::forward(const at::Tensor& x, const rope_tables& rope, const at::Tensor& mask,
                              layer_cache* cache) const {
  const auto B = x.size(0), T = x.size(1);
  auto [q, k, v] = project(x, rope);
  if (cache != nullptr) {
    if (cache->k.defined()) {
      k = at::cat({cache->k, k}, /*dim=*/2); // [B, K, S, D]
      v = at::cat({cache->v, v}, /*dim=*/2);
    }
    cache->k = k;
    cache->v = v;
  }
  const int64_t groups = heads / kv_heads;
  at::Tensor y =
    scaled_dot_product(q, repeat_kv(k, groups), repeat_kv(v, groups), mask); // [B,H,T,D]
  return at::linear(y.transpose(1, 2).reshape({B, T, heads * head_dim}), o_proj, o_bias); // [B,T,C]
}

namespace {

// A prompt chunk q [1, H, L, D] against its keys and values [1, H, S, D], S = cached + L. With
// nothing cached the causal mask is the plain lower triangle, which torch 2.x's fused kernels
// apply themselves (is_causal, no mask read); otherwise `mask` [1, 1, L, S].
at::Tensor chunk_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& mask) {
#if TORCH_VERSION_MAJOR >= 2
  if (!mask.defined())
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                            /*is_causal=*/true);
#endif
  return scaled_dot_product(q, k, v, mask);
}

} // namespace

at::Tensor attention::forward_packed(const at::Tensor& x, const rope_tables& rope,
                                     const packed_layout& layout, size_t layer) const {
  using at::indexing::Slice;
  const auto N = x.size(1);
  auto [q, k, v] = project(x, rope);                   // [1, H, N, D], [1, K, N, D], [1, K, N, D]
  const at::Tensor new_keys = k[0], new_values = v[0]; // [K, N, D]
  // Per-layer view operations add up for a lone sequence's step, so whole ranges skip them.
  auto rows_of = [N](const at::Tensor& x_rows, int64_t begin, int64_t count) {
    return begin == 0 && count == N ? x_rows : x_rows.narrow(1, begin, count);
  };
  for (const packed_writes& w : layout.writes) {
    auto write = [&](at::Tensor& store, const at::Tensor& from) { // [K, blocks, block, D]
      at::Tensor written = rows_of(from, w.begin, w.count);       // [K, count, D]
      if (w.flat >= 0)
        store.view({kv_heads, -1, head_dim}).narrow(1, w.flat, w.count).copy_(written);
      else
        store.index_put_({Slice(), w.block, w.offset}, written);
    };
    write(w.pool->keys(layer), new_keys);
    write(w.pool->values(layer), new_values);
  }
  const int64_t groups = heads / kv_heads;
  at::Tensor rows = at::empty({N, heads, head_dim}, q.options()); // outputs, [N, H, D]
  if (layout.pool != nullptr)
    attend_decode_rows(layout, layer, q, rows);

  for (size_t i = 0; i < layout.segments.size(); ++i) {
    const packed_segment& s = layout.segments[i];
    if (layout.pooled[i] != 0)
      continue;
    const int64_t cached = s.kv->length(), S = cached + s.length;
    // Its keys and values [K, S, D]: with nothing cached, its own new ones; else from its blocks.
    auto read = [&](at::Tensor& store, const at::Tensor& from) {
      if (cached == 0)
        return rows_of(from, s.begin, s.length);
      const int64_t bs = store.size(2), used = blocks_for(S, bs);
      if (layout.first_block[i] >= 0)
        return store.view({kv_heads, -1, head_dim}).narrow(1, layout.first_block[i] * bs, S);
      return store.index_select(1, layout.blocks[i])
        .view({kv_heads, used * bs, head_dim})
        .narrow(1, 0, S);
    };
    const at::Tensor keys = read(s.kv->pool()->keys(layer), new_keys);
    const at::Tensor values = read(s.kv->pool()->values(layer), new_values);
    at::Tensor out;
    if (s.length == 1)
      out = decode_attention(q.narrow(2, s.begin, 1), keys, values); // [1, H, 1, D]
    else
      out = chunk_attention(q.narrow(2, s.begin, s.length), repeat_kv(keys.unsqueeze(0), groups),
                            repeat_kv(values.unsqueeze(0), groups),
                            layout.masks[i]);                        // [1, H, L, D]
    rows.narrow(0, s.begin, s.length).copy_(out[0].transpose(0, 1)); // [L, H, D]
  }
  return at::linear(rows.reshape({1, N, heads * head_dim}), o_proj, o_bias); // [1, N, C]
}

// Decode rows of many sequences sharing a pool (their new keys already written): each row's
// blocks are gathered through its block table with one index_select, and attention runs as
// batched matmuls over (key head, row) pairs with the length mask added in, so the number of
// operations does not grow with the batch and only the rows' own blocks are read.
void attention::attend_decode_rows(const packed_layout& layout, size_t layer, const at::Tensor& q,
                                   at::Tensor& rows) const {
  kv_pool& pool = *layout.pool;
  const int64_t B = layout.row.size(0), S = layout.bias.size(2);
  const int64_t K = kv_heads, G = heads / kv_heads, D = head_dim;
  const int64_t gathered = layout.table.size(0) / B * pool.block_tokens(); // M blocks, >= S
  auto read = [&](const at::Tensor& store) { // [K, blocks, block, D] -> [K * B, S, D]
    return store.index_select(1, layout.table).view({K * B, gathered, D}).narrow(1, 0, S);
  };
  at::Tensor keys = read(pool.keys(layer));
  at::Tensor values = read(pool.values(layer));
  at::Tensor grouped = q[0]
                         .index_select(1, layout.row) // [H, B, D]
                         .view({K, G, B, D})
                         .transpose(1, 2)
                         .reshape({K * B, G, D}); // [K * B, G, D]
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor scores = at::baddbmm(layout.bias, grouped, keys.transpose(1, 2), /*beta=*/1.0,
                                  /*alpha=*/scale);       // [K * B, G, S]
  at::Tensor out = at::bmm(softmax_fp32(scores), values); // [K * B, G, D]
  rows.index_copy_(0, layout.row, out.view({K, B, G, D}).transpose(0, 1).reshape({B, heads, D}));
}

double lowest_finite(at::ScalarType dtype) {
  return dtype == at::kHalf       ? -65504.0
         : dtype == at::kBFloat16 ? -3.3895313892515355e38
                                  : static_cast<double>(std::numeric_limits<float>::lowest());
}

} // namespace pedagogy::models
