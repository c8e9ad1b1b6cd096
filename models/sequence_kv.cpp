// Growable per-sequence KV cache (see sequence_kv.hpp).
#include "models/sequence_kv.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>

namespace pedagogy::models {

sequence_kv::sequence_kv(int64_t layers, int64_t kv_heads, int64_t head_dim,
                         at::TensorOptions options)
  : kv_heads_(kv_heads), head_dim_(head_dim), options_(options) {
  k_.resize(static_cast<size_t>(layers));
  v_.resize(static_cast<size_t>(layers));
}

void sequence_kv::reserve(int64_t tokens) {
  const int64_t capacity = k_[0].defined() ? k_[0].size(1) : 0;
  if (tokens <= capacity)
    return;
  const int64_t grown = std::max<int64_t>({tokens, 2 * capacity, 64});
  for (size_t l = 0; l < k_.size(); ++l) {
    for (auto* store : {&k_[l], &v_[l]}) {
      at::Tensor bigger = at::empty({kv_heads_, grown, head_dim_}, options_);
      if (store->defined() && length_ > 0)
        bigger.narrow(1, 0, length_).copy_(store->narrow(1, 0, length_));
      *store = bigger;
    }
  }
}

std::pair<at::Tensor, at::Tensor> sequence_kv::extend(size_t layer, const at::Tensor& k,
                                                      const at::Tensor& v) {
  const int64_t T = k.size(1);
  if (layer == 0)
    reserve(length_ + T);
  k_[layer].narrow(1, length_, T).copy_(k);
  v_[layer].narrow(1, length_, T).copy_(v);
  return {k_[layer].narrow(1, 0, length_ + T), v_[layer].narrow(1, 0, length_ + T)};
}

void sequence_kv::advance(int64_t tokens) {
  length_ += tokens;
}

void sequence_kv::truncate(int64_t tokens) {
  PEDAGOGY_CHECK(tokens >= 0 && tokens <= length_, "truncate to {} of {} tokens", tokens, length_);
  length_ = tokens;
}

sequence_kv sequence_kv::fork() const {
  sequence_kv copy(static_cast<int64_t>(k_.size()), kv_heads_, head_dim_, options_);
  if (length_ == 0)
    return copy;
  copy.reserve(length_);
  for (size_t l = 0; l < k_.size(); ++l) {
    copy.k_[l].narrow(1, 0, length_).copy_(k_[l].narrow(1, 0, length_));
    copy.v_[l].narrow(1, 0, length_).copy_(v_[l].narrow(1, 0, length_));
  }
  copy.length_ = length_;
  return copy;
}

void sequence_kv::clear() {
  for (auto& t : k_)
    t = at::Tensor();
  for (auto& t : v_)
    t = at::Tensor();
  length_ = 0;
}

} // namespace pedagogy::models
