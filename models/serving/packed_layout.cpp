// The layout of a packed batch (see packed_layout.hpp).
#include "models/serving/packed_layout.hpp"

#include "models/tensor/attention.hpp"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <algorithm>
#include <utility>

namespace pedagogy::models {

namespace {

// Index vectors gathered on the host while a layout is built and copied to the device at once.
class index_upload {
public:
  // Appends `values`; its tensor is view(handle) after send().
  size_t add(const std::vector<int64_t>& values) {
    spans_.emplace_back(static_cast<int64_t>(all_.size()), static_cast<int64_t>(values.size()));
    all_.insert(all_.end(), values.begin(), values.end());
    return spans_.size() - 1;
  }
  void send(at::Device device) {
    if (!all_.empty()) // a lone sequence's step often needs none
      on_device_ = at::tensor(all_, at::kLong).to(device);
  }
  at::Tensor view(size_t handle) const {
    return on_device_.narrow(0, spans_[handle].first, spans_[handle].second);
  }

private:
  std::vector<int64_t> all_;
  std::vector<std::pair<int64_t, int64_t>> spans_; // offset, size
  at::Tensor on_device_;
};

// Whether a prompt chunk with nothing cached attends through the fused kernel's is_causal.
constexpr bool fused_causal = TORCH_VERSION_MAJOR >= 2;

// The decode rows of the first pool that has any are attended together, if there are two.
std::vector<size_t> decode_rows(const std::vector<packed_segment>& segments) {
  std::vector<size_t> decode;
  for (size_t i = 0; i < segments.size(); ++i) {
    const packed_segment& s = segments[i];
    if (s.length == 1 && (decode.empty() || s.kv->pool() == segments[decode[0]].kv->pool()))
      decode.push_back(i);
  }
  if (decode.size() < 2) // one row is cheaper on its own
    decode.clear();
  return decode;
}

// Writes: one per run of consecutive segments in one pool, a plain copy when their places are
// consecutive; the others' block and offset indices go to `upload` (their handles returned).
std::vector<std::pair<size_t, size_t>> plan_writes(packed_layout& layout,
                                                   const std::vector<packed_segment>& segments,
                                                   index_upload& upload) {
  std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> writes; // blocks, offsets
  for (const packed_segment& s : segments) {
    kv_pool* pool = s.kv->pool();
    const packed_writes* last = layout.writes.empty() ? nullptr : &layout.writes.back();
    if (last == nullptr || last->pool != pool || last->begin + last->count != s.begin) {
      layout.writes.push_back({pool, s.begin, 0, {}, {}});
      writes.emplace_back();
    }
    layout.writes.back().count += s.length;
    const int64_t bs = pool->block_tokens();
    const auto& table = s.kv->blocks();
    for (int64_t t = s.kv->length(); t < s.kv->length() + s.length; ++t) {
      writes.back().first.push_back(table[static_cast<size_t>(t / bs)]);
      writes.back().second.push_back(t % bs);
    }
  }
  std::vector<std::pair<size_t, size_t>> write_handles;
  for (size_t w = 0; w < writes.size(); ++w) {
    const auto& [blocks, offsets] = writes[w];
    const int64_t bs = layout.writes[w].pool->block_tokens();
    bool consecutive = true;
    for (size_t t = 1; t < blocks.size() && consecutive; ++t)
      consecutive =
        blocks[t] * bs + offsets[t] == blocks[0] * bs + offsets[0] + static_cast<int64_t>(t);
    if (consecutive && !blocks.empty())
      layout.writes[w].flat = blocks[0] * bs + offsets[0];
    else
      write_handles.emplace_back(upload.add(blocks), upload.add(offsets));
  }

  return write_handles;
}

// Segments on their own: the blocks they read (a view when consecutive, else indices in
// `upload`: (segment, handle) returned) and their causal masks.
std::vector<std::pair<size_t, size_t>> plan_reads(packed_layout& layout,
                                                  const std::vector<packed_segment>& segments,
                                                  index_upload& upload,
                                                  at::TensorOptions activations) {
  const size_t n = segments.size();
  const at::ScalarType dtype = at::typeMetaToScalarType(activations.dtype());
  std::vector<std::pair<size_t, size_t>> read_handles; // segment, handle
  for (size_t i = 0; i < n; ++i) {
    const packed_segment& s = segments[i];
    const int64_t cached = s.kv->length(), S = cached + s.length;
    if (layout.pooled[i] != 0)
      continue;
    if (cached > 0) {
      const auto& table = s.kv->blocks();
      const auto used = static_cast<size_t>(blocks_for(S, s.kv->pool()->block_tokens()));
      bool consecutive = true;
      for (size_t b = 1; b < used && consecutive; ++b)
        consecutive = table[b] == table[0] + static_cast<int64_t>(b);
      if (consecutive)
        layout.first_block[i] = table[0];
      else
        read_handles.emplace_back(
          i, upload.add(std::vector<int64_t>(table.begin(), table.begin() + used)));
    }
    if (s.length != 1 && !(fused_causal && cached == 0)) {
      // New token j (absolute position S - L + j) sees keys 0 .. S - L + j.
      at::Tensor mask = at::zeros({1, 1, s.length, S}, activations);
      mask.masked_fill_(
        at::ones({s.length, S}, activations.dtype(at::kBool)).tril(S - s.length).logical_not(),
        lowest_finite(dtype));
      layout.masks[i] = mask;
    }
  }

  return read_handles;
}

// Decode rows together: their rows, block tables and where each one's keys end, in `upload`.
struct decode_handles {
  size_t rows = 0, table = 0, positions = 0;
};
decode_handles plan_decode(packed_layout& layout, const std::vector<packed_segment>& segments,
                           const std::vector<size_t>& decode, index_upload& upload) {
  decode_handles handles;
  int64_t M = 0;
  if (!decode.empty()) {
    layout.pool = segments[decode[0]].kv->pool();
    const int64_t bs = layout.pool->block_tokens();
    std::vector<int64_t> rows, positions, table;
    for (size_t i : decode)
      M = std::max(M, blocks_for(segments[i].kv->length() + 1, bs));
    for (size_t i : decode) {
      const packed_segment& s = segments[i];
      rows.push_back(s.begin);
      positions.push_back(s.kv->length());
      const auto& own = s.kv->blocks();
      const auto used = static_cast<size_t>(blocks_for(s.kv->length() + 1, bs));
      for (size_t b = 0; b < static_cast<size_t>(M); ++b)
        table.push_back(own[b < used ? b : 0]);
    }
    handles.rows = upload.add(rows);
    handles.table = upload.add(table);
    handles.positions = upload.add(positions);
  }
  return handles;
}

} // namespace

packed_layout layout_packed(const std::vector<packed_segment>& segments,
                            at::TensorOptions activations) {
  const size_t n = segments.size();
  packed_layout layout;
  layout.segments = segments;
  layout.masks.resize(n);
  layout.blocks.resize(n);
  layout.first_block.assign(n, -1);
  layout.pooled.assign(n, 0);
  const at::ScalarType dtype = at::typeMetaToScalarType(activations.dtype());
  const std::vector<size_t> decode = decode_rows(segments);
  for (size_t i : decode)
    layout.pooled[i] = 1;

  // Every index the forward needs, in one copy to the device.
  index_upload upload;
  const auto write_handles = plan_writes(layout, segments, upload);
  const auto read_handles = plan_reads(layout, segments, upload, activations);
  const decode_handles handles = plan_decode(layout, segments, decode, upload);
  upload.send(activations.device());
  for (size_t w = 0, h = 0; w < layout.writes.size(); ++w) {
    if (layout.writes[w].flat >= 0)
      continue;
    layout.writes[w].block = upload.view(write_handles[h].first);
    layout.writes[w].offset = upload.view(write_handles[h++].second);
  }
  for (const auto& [i, handle] : read_handles)
    layout.blocks[i] = upload.view(handle);
  if (layout.pool != nullptr) {
    layout.row = upload.view(handles.rows);
    layout.table = upload.view(handles.table);
    const at::Tensor position = upload.view(handles.positions); // [B]
    const auto B = position.size(0);
    int64_t S = 0; // keys up to the longest row's new one; the rest of its last block is skipped
    for (size_t i : decode)
      S = std::max(S, segments[i].kv->length() + 1);
    at::Tensor past_end =
      at::arange(S, position.options()).unsqueeze(0) > position.unsqueeze(1); // [B, S]
    layout.bias = at::zeros({B, 1, S}, activations)
                    .masked_fill_(past_end.unsqueeze(1), lowest_finite(dtype))
                    .repeat({layout.pool->kv_heads(), 1, 1}); // [K * B, 1, S]
  }
  return layout;
}

} // namespace pedagogy::models
