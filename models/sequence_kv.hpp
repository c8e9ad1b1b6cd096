// KV caches of sequences, stored in a shared pool: per layer one tensor [slots, K, capacity, D]
// in which every sequence owns a slot. Sharing storage lets a decode step treat all sequences
// at once (one write of their new keys, one gather for attention) instead of one at a time.
// Capacity (tokens per slot) and slot count grow by doubling; a forward reserves capacity for
// all its sequences before it runs, so no view it holds is invalidated.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace pedagogy::models {

class kv_pool {
public:
  kv_pool(int64_t layers, int64_t kv_heads, int64_t head_dim, at::TensorOptions options);

  int64_t allocate();
  void release(int64_t slot);
  // Makes room for `tokens` tokens in every slot.
  void reserve_tokens(int64_t tokens);
  void copy_slot(int64_t from, int64_t to, int64_t tokens);

  at::Tensor& keys(size_t layer) { // [slots, K, capacity, D]
    return k_[layer];
  }
  at::Tensor& values(size_t layer) {
    return v_[layer];
  }
  int64_t capacity() const {
    return capacity_;
  }

private:
  void resize(int64_t slots, int64_t capacity);

  std::vector<at::Tensor> k_;
  std::vector<at::Tensor> v_;
  std::vector<int64_t> free_;
  int64_t slots_ = 0;
  int64_t capacity_ = 0;
  int64_t kv_heads_;
  int64_t head_dim_;
  at::TensorOptions options_;
};

// One sequence's cache: a slot in a pool and the number of tokens committed to it.
// A forward first extend()s every layer with its new tokens, then advance()s the length once.
class sequence_kv {
public:
  sequence_kv() = default;
  explicit sequence_kv(std::shared_ptr<kv_pool> pool);
  ~sequence_kv();
  sequence_kv(sequence_kv&& other) noexcept;
  sequence_kv& operator=(sequence_kv&& other) noexcept;
  sequence_kv(const sequence_kv&) = delete;
  sequence_kv& operator=(const sequence_kv&) = delete;

  // Writes keys/values [K, T, D] after the committed tokens of `layer` and returns views of all
  // of them, committed and new: [K, length + T, D]. Capacity must have been reserved.
  std::pair<at::Tensor, at::Tensor> extend(size_t layer, const at::Tensor& k, const at::Tensor& v);
  void advance(int64_t tokens);
  void truncate(int64_t tokens);
  // A copy of the committed tokens in a new slot of the same pool (n > 1 samples of one prompt).
  sequence_kv fork() const;
  // Gives the slot back; the sequence is empty afterwards.
  void clear();

  int64_t length() const {
    return length_;
  }
  bool empty() const {
    return slot_ < 0;
  }
  int64_t slot() const {
    return slot_;
  }
  kv_pool* pool() const {
    return pool_.get();
  }

private:
  std::shared_ptr<kv_pool> pool_;
  int64_t slot_ = -1;
  int64_t length_ = 0;
};

} // namespace pedagogy::models
