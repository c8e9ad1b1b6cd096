// The pooled KV cache (see sequence_kv.hpp).
#include "models/sequence_kv.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>

#include <algorithm>

namespace pedagogy::models {

kv_pool::kv_pool(int64_t layers, int64_t kv_heads, int64_t head_dim, at::TensorOptions options)
  : kv_heads_(kv_heads), head_dim_(head_dim), options_(options) {
  k_.resize(static_cast<size_t>(layers));
  v_.resize(static_cast<size_t>(layers));
}

void kv_pool::resize(int64_t slots, int64_t capacity) {
  for (size_t l = 0; l < k_.size(); ++l) {
    for (auto* store : {&k_[l], &v_[l]}) {
      // Zeros, not empty: batched decode reads every slot up to the longest sequence and masks
      // the rest, and a masked score times a NaN left in reused memory is still NaN.
      at::Tensor bigger = at::zeros({slots, kv_heads_, capacity, head_dim_}, options_);
      if (store->defined() && slots_ > 0 && capacity_ > 0)
        bigger.narrow(0, 0, slots_).narrow(2, 0, capacity_).copy_(*store);
      *store = bigger;
    }
  }
  slots_ = slots;
  capacity_ = capacity;
}

int64_t kv_pool::allocate() {
  if (free_.empty()) {
    const int64_t before = slots_;
    const int64_t grown = std::max<int64_t>(2 * slots_, 4);
    resize(grown, std::max<int64_t>(capacity_, 64));
    for (int64_t s = grown - 1; s >= before; --s)
      free_.push_back(s);
  }
  const int64_t slot = free_.back();
  free_.pop_back();
  return slot;
}

void kv_pool::release(int64_t slot) {
  free_.push_back(slot);
}

void kv_pool::reserve_tokens(int64_t tokens) {
  if (tokens > capacity_)
    resize(slots_, std::max(tokens, 2 * capacity_));
}

void kv_pool::copy_slot(int64_t from, int64_t to, int64_t tokens) {
  for (size_t l = 0; l < k_.size(); ++l) {
    k_[l][to].narrow(1, 0, tokens).copy_(k_[l][from].narrow(1, 0, tokens));
    v_[l][to].narrow(1, 0, tokens).copy_(v_[l][from].narrow(1, 0, tokens));
  }
}

sequence_kv::sequence_kv(std::shared_ptr<kv_pool> pool) : pool_(std::move(pool)) {
  slot_ = pool_->allocate();
}

sequence_kv::~sequence_kv() {
  clear();
}

sequence_kv::sequence_kv(sequence_kv&& other) noexcept
  : pool_(std::move(other.pool_)), slot_(other.slot_), length_(other.length_) {
  other.slot_ = -1;
  other.length_ = 0;
}

sequence_kv& sequence_kv::operator=(sequence_kv&& other) noexcept {
  if (this != &other) {
    clear();
    pool_ = std::move(other.pool_);
    slot_ = other.slot_;
    length_ = other.length_;
    other.slot_ = -1;
    other.length_ = 0;
  }
  return *this;
}

std::pair<at::Tensor, at::Tensor> sequence_kv::extend(size_t layer, const at::Tensor& k,
                                                      const at::Tensor& v) {
  const int64_t T = k.size(1);
  PEDAGOGY_CHECK(length_ + T <= pool_->capacity(), "KV capacity {} not reserved for {} tokens",
                 pool_->capacity(), length_ + T);
  at::Tensor keys = pool_->keys(layer)[slot_];     // [K, capacity, D]
  at::Tensor values = pool_->values(layer)[slot_]; // [K, capacity, D]
  keys.narrow(1, length_, T).copy_(k);
  values.narrow(1, length_, T).copy_(v);
  return {keys.narrow(1, 0, length_ + T), values.narrow(1, 0, length_ + T)};
}

void sequence_kv::advance(int64_t tokens) {
  length_ += tokens;
}

void sequence_kv::truncate(int64_t tokens) {
  PEDAGOGY_CHECK(tokens >= 0 && tokens <= length_, "truncate to {} of {} tokens", tokens, length_);
  length_ = tokens;
}

sequence_kv sequence_kv::fork() const {
  sequence_kv copy(pool_);
  if (length_ > 0)
    pool_->copy_slot(slot_, copy.slot_, length_);
  copy.length_ = length_;
  return copy;
}

void sequence_kv::clear() {
  if (slot_ >= 0 && pool_)
    pool_->release(slot_);
  slot_ = -1;
  length_ = 0;
}

} // namespace pedagogy::models
