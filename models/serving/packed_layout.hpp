// How the rows of a packed batch (many sequences' tokens in one forward) map to their KV caches:
// where each row's new key and value go, which blocks each sequence reads, the causal masks of
// prompt chunks, and the block tables of the decode rows that attend together. Built once per
// forward, with every index in one copy to the device, so no layer builds or copies any.
#pragma once

#include "models/serving/kv_cache.hpp"

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace pedagogy::models {

// Rows [begin, begin + length) of a packed batch belong to the sequence whose cache is `kv`.
struct packed_segment {
  sequence_kv* kv = nullptr;
  int64_t begin = 0;
  int64_t length = 0;
};

// Rows [begin, begin + count) of a packed batch whose new keys and values go to one pool, row
// begin + i at offset offset[i] of block block[i]: one indexed store per layer for all of them,
// or a plain copy when they go to consecutive places (token `flat` of the pool viewed as
// [K, blocks * block, D] onwards; -1 when they do not).
struct packed_writes {
  kv_pool* pool = nullptr;
  int64_t begin = 0;
  int64_t count = 0;
  at::Tensor block;  // [count]; undefined when flat >= 0
  at::Tensor offset; // [count]
  int64_t flat = -1;
};

// What every layer's attention needs to know about a packed batch besides its own keys and
// values, built once per forward on the model's device instead of once per layer. The caches'
// blocks must be reserved before it is built.
struct packed_layout {
  std::vector<packed_segment> segments;
  std::vector<packed_writes> writes; // one per run of consecutive segments in one pool
  // Per segment that attends on its own (a prompt chunk, a lone decode row), over its S =
  // cached + L keys: the additive causal mask [1, 1, L, S] of a chunk of L != 1 rows (undefined
  // for a single row, and, on torch 2.x, for a chunk with nothing cached: the fused kernel's
  // is_causal does it); and the cached blocks it reads: `blocks` [ceil(S / block)], or, when
  // they are consecutive in the pool, a view from `first_block` (-1 otherwise). Nothing is read
  // when nothing is cached: such a chunk attends over its own new keys.
  std::vector<at::Tensor> masks;
  std::vector<at::Tensor> blocks;
  std::vector<int64_t> first_block;
  // Single-row segments of one pool (the engine's decode rows), attended together when there are
  // two or more; `pool` is null otherwise. They read their blocks through their block tables, M
  // blocks each (the most any of them uses; shorter tables are padded with their first block).
  kv_pool* pool = nullptr;
  std::vector<uint8_t> pooled; // per segment: 1 = one of those rows
  at::Tensor row;              // [B] their rows in the batch
  at::Tensor table;            // [B * M] their block tables, one after another
  at::Tensor bias;             // [K * B, 1, S] additive: 0 up to a row's own key, S = longest
};

// `activations`: the dtype and device of the hidden states.
packed_layout layout_packed(const std::vector<packed_segment>& segments,
                            at::TensorOptions activations);

} // namespace pedagogy::models
