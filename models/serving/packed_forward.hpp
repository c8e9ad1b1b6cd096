// The decoder over a packed batch: many sequences' new tokens in one row, each segment extending
// its own paged KV cache (kv_cache.hpp), laid out once per forward (packed_layout.hpp). The
// projections and MLPs run over all N rows at once (continuous batching without padding); decode
// rows attend together through their block tables and every other segment against its own cache.
// This is the engine's (and SFT's packing) path; models/tensor/transformer.hpp is the plain one.
#pragma once

#include "models/serving/kv_cache.hpp"
#include "models/serving/packed_layout.hpp"
#include "models/tensor/attention.hpp"
#include "models/tensor/transformer.hpp"

#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace pedagogy::models {

// One layer's attention over packed rows, x [1, N, C] with rope for [1, N]: the projections run
// over all N rows at once, their keys and values are written to their caches (not advanced),
// decode rows attend together and every other segment against its own cache. Returns [1, N, C].
at::Tensor attention_packed(const attention& a, const at::Tensor& x, const rope_tables& rope,
                            const packed_layout& layout, size_t layer);

// tokens [N] and their positions [N]; each segment names its rows and its cache, which is
// extended by them. Returns the final hidden states [N, C]. A cache in a bounded pool must have
// room for its new tokens (sequence_kv::reserve); they are reserved here before any layer runs.
at::Tensor forward_packed(const transformer& model, const at::Tensor& tokens,
                          const at::Tensor& positions, const std::vector<packed_segment>& segments);

// A KV pool for many sequences of `model` (device and dtype of its weights): blocks of
// `block_tokens` tokens, at most `max_blocks` of them (0 = unbounded).
std::shared_ptr<kv_pool> new_kv_pool(const transformer& model, int64_t block_tokens = 16,
                                     int64_t max_blocks = 0);

// An empty cache for one sequence, in an unbounded pool of its own.
sequence_kv new_sequence_kv(const transformer& model);

} // namespace pedagogy::models
