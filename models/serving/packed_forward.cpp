// The decoder over a packed batch with paged KV caches (see packed_forward.hpp).
#include "models/serving/packed_forward.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <ATen/TensorIndexing.h>
#include <torch/version.h>

#include <cmath>

namespace pedagogy::models {

namespace {

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

// Decode rows of many sequences sharing a pool (their new keys already written): each row's
// blocks are gathered through its block table with one index_select, and attention runs as
// batched matmuls over (key head, row) pairs with the length mask added in, so the number of
// operations does not grow with the batch and only the rows' own blocks are read.
void attend_decode_rows(const attention& a, const packed_layout& layout, size_t layer,
                        const at::Tensor& q, at::Tensor& rows) {
  const int64_t heads = a.heads, kv_heads = a.kv_heads, head_dim = a.head_dim;
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

} // namespace

at::Tensor attention_packed(const attention& a, const at::Tensor& x, const rope_tables& rope,
                            const packed_layout& layout, size_t layer) {
  const int64_t heads = a.heads, kv_heads = a.kv_heads, head_dim = a.head_dim;
  using at::indexing::Slice;
  const auto N = x.size(1);
  auto [q, k, v] = a.project(x, rope);                 // [1, H, N, D], [1, K, N, D], [1, K, N, D]
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
    attend_decode_rows(a, layout, layer, q, rows);

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
  return at::linear(rows.reshape({1, N, heads * head_dim}), a.o_proj, a.o_bias); // [1, N, C]
}

at::Tensor forward_packed(const transformer& model, const at::Tensor& tokens,
                          const at::Tensor& positions,
                          const std::vector<packed_segment>& segments) {
  const auto device = model.embedding().device();
  for (const packed_segment& s : segments) { // no cache may move once the layers run
    const bool reserved = s.kv->reserve(s.length);
    PEDAGOGY_CHECK(reserved, "no KV blocks for {} more tokens ({} of {} blocks used)", s.length,
                   s.kv->pool()->blocks_used(), s.kv->pool()->block_budget());
  }
  const packed_layout layout = layout_packed(segments, model.embedding().options());
  rope_tables rope = model.rope_at(positions.to(device).unsqueeze(0));
  at::Tensor h = at::embedding(model.embedding(), tokens.to(device)).unsqueeze(0); // [1, N, C]
  for (size_t i = 0; i < model.layers().size(); ++i) {
    const decoder_layer& layer = model.layers()[i];
    h = h + attention_packed(layer.self_attn, layer.input_layernorm.forward(h), rope, layout, i);
    h = h + layer.ffn.forward(layer.post_attention_layernorm.forward(h));
  }
  for (const packed_segment& s : segments)
    s.kv->advance(s.length);
  return model.final_norm().forward(h)[0]; // [N, C]
}

std::shared_ptr<kv_pool> new_kv_pool(const transformer& model, int64_t block_tokens,
                                     int64_t max_blocks) {
  const model_config& c = model.config();
  return std::make_shared<kv_pool>(c.num_hidden_layers, c.num_key_value_heads, c.head_dim,
                                   model.embedding().options(), block_tokens, max_blocks);
}

sequence_kv new_sequence_kv(const transformer& model) {
  return sequence_kv(new_kv_pool(model));
}

} // namespace pedagogy::models
