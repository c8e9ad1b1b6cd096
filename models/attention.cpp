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

packed_layout layout_packed(const std::vector<packed_segment>& segments,
                            at::TensorOptions activations) {
  packed_layout layout;
  layout.segments = segments;
  layout.masks.resize(segments.size());
  layout.pooled.assign(segments.size(), 0);
  std::vector<int64_t> slots, lengths, rows;
  for (size_t i = 0; i < segments.size(); ++i) {
    const packed_segment& s = segments[i];
    if (s.length == 1 && (layout.pool == nullptr || s.kv->pool() == layout.pool)) {
      layout.pool = s.kv->pool();
      layout.pooled[i] = 1;
      slots.push_back(s.kv->slot());
      lengths.push_back(s.kv->length());
      rows.push_back(s.begin);
    } else if (s.length != 1) {
      const int64_t S = s.kv->length() + s.length; // cached + new
      // New token j (absolute position S - L + j) sees keys 0 .. S - L + j.
      at::Tensor mask = at::zeros({1, 1, s.length, S}, activations);
      mask.masked_fill_(
        at::ones({s.length, S}, activations.dtype(at::kBool)).tril(S - s.length).logical_not(),
        lowest_finite(at::typeMetaToScalarType(activations.dtype())));
      layout.masks[i] = mask;
    }
  }
  if (rows.size() < 2) { // one row is cheaper on its own
    layout.pool = nullptr;
    std::fill(layout.pooled.begin(), layout.pooled.end(), 0);
    return layout;
  }
  // Slots, lengths and rows travel to the device in one copy.
  const auto B = static_cast<int64_t>(rows.size());
  std::vector<int64_t> packed = slots;
  packed.insert(packed.end(), lengths.begin(), lengths.end());
  packed.insert(packed.end(), rows.begin(), rows.end());
  const at::Tensor on_device = at::tensor(packed, at::kLong).to(activations.device()); // [3B]
  layout.slot = on_device.narrow(0, 0, B);
  layout.position = on_device.narrow(0, B, B);
  layout.row = on_device.narrow(0, 2 * B, B);
  const int64_t S = *std::max_element(lengths.begin(), lengths.end()) + 1;
  at::Tensor visible =
    at::arange(S, layout.position.options()).unsqueeze(0) <= layout.position.unsqueeze(1); // [B,S]
  layout.past_end = visible.logical_not().view({B, 1, 1, S});
  return layout;
}

at::Tensor attention::forward_packed(const at::Tensor& x, const rope_tables& rope,
                                     const packed_layout& layout, size_t layer) const {
  const auto N = x.size(1);
  auto [q, k, v] = project(x, rope); // [1, H, N, D], [1, K, N, D], [1, K, N, D]
  const int64_t groups = heads / kv_heads;
  at::Tensor rows = at::empty({N, heads, head_dim}, q.options()); // outputs, [N, H, D]
  if (layout.pool != nullptr)
    attend_decode_rows(layout, layer, q, k, v, rows);

  for (size_t i = 0; i < layout.segments.size(); ++i) {
    const packed_segment& s = layout.segments[i];
    if (layout.pooled[i] != 0)
      continue;
    auto [keys, values] =
      s.kv->extend(layer, k[0].narrow(1, s.begin, s.length), v[0].narrow(1, s.begin, s.length));
    at::Tensor out;
    if (s.length == 1)
      out = decode_attention(q.narrow(2, s.begin, 1), keys, values); // [1, H, 1, D]
    else
      out = scaled_dot_product(q.narrow(2, s.begin, s.length), repeat_kv(keys.unsqueeze(0), groups),
                               repeat_kv(values.unsqueeze(0), groups),
                               layout.masks[i]);                     // [1, H, L, D]
    rows.narrow(0, s.begin, s.length).copy_(out[0].transpose(0, 1)); // [L, H, D]
  }
  return at::linear(rows.reshape({1, N, heads * head_dim}), o_proj, o_bias); // [1, N, C]
}

// Decode rows of many sequences sharing a pool: their new keys are written with one indexed
// store, their caches gathered with one index_select, and attention runs as batched matmuls
// with a length mask, so the number of operations does not grow with the batch.
void attention::attend_decode_rows(const packed_layout& layout, size_t layer, const at::Tensor& q,
                                   const at::Tensor& k, const at::Tensor& v,
                                   at::Tensor& rows) const {
  using at::indexing::Slice;
  kv_pool& pool = *layout.pool;
  const at::Tensor& slot = layout.slot; // [B]
  const at::Tensor& row = layout.row;   // [B]
  const int64_t B = slot.size(0), S = layout.past_end.size(3);
  const int64_t G = heads / kv_heads;
  at::Tensor k_new = k[0].index_select(1, row).transpose(0, 1); // [B, K, D]
  at::Tensor v_new = v[0].index_select(1, row).transpose(0, 1); // [B, K, D]
  pool.keys(layer).index_put_({slot, Slice(), layout.position}, k_new);
  pool.values(layer).index_put_({slot, Slice(), layout.position}, v_new);

  at::Tensor keys = pool.keys(layer).narrow(2, 0, S).index_select(0, slot);     // [B, K, S, D]
  at::Tensor values = pool.values(layer).narrow(2, 0, S).index_select(0, slot); // [B, K, S, D]
  at::Tensor grouped =
    q[0].index_select(1, row).transpose(0, 1).reshape({B, kv_heads, G, head_dim});
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  at::Tensor scores = at::matmul(grouped, keys.transpose(2, 3)) * scale; // [B, K, G, S]
  scores.masked_fill_(layout.past_end, lowest_finite(q.scalar_type()));
  at::Tensor out = at::matmul(softmax_fp32(scores), values); // [B, K, G, D]
  rows.index_copy_(0, row, out.reshape({B, heads, head_dim}));
}

double lowest_finite(at::ScalarType dtype) {
  return dtype == at::kHalf       ? -65504.0
         : dtype == at::kBFloat16 ? -3.3895313892515355e38
                                  : static_cast<double>(std::numeric_limits<float>::lowest());
}

} // namespace pedagogy::models
