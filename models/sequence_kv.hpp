// The KV cache of one sequence: per layer, keys and values of the tokens computed so far, in
// tensors with spare capacity that doubles as the sequence grows (appending is amortised O(1)).
// A forward first extend()s every layer with its new tokens, then advance()s the length once.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace pedagogy::models {

class sequence_kv {
public:
  sequence_kv() = default;
  sequence_kv(int64_t layers, int64_t kv_heads, int64_t head_dim, at::TensorOptions options);

  // Writes keys/values [K, T, D] after the committed tokens of `layer` and returns views of all
  // of them, committed and new: [K, length + T, D].
  std::pair<at::Tensor, at::Tensor> extend(size_t layer, const at::Tensor& k, const at::Tensor& v);
  // Commits the T tokens the last extend() of every layer wrote.
  void advance(int64_t tokens);
  // Forgets every token after the first `tokens`.
  void truncate(int64_t tokens);
  // An independent copy of the committed tokens (for n > 1 samples of one prompt).
  sequence_kv fork() const;
  void clear();

  int64_t length() const {
    return length_;
  }
  bool empty() const {
    return k_.empty();
  }

private:
  void reserve(int64_t tokens);

  std::vector<at::Tensor> k_; // per layer [K, capacity, D]
  std::vector<at::Tensor> v_;
  int64_t length_ = 0;
  int64_t kv_heads_ = 0;
  int64_t head_dim_ = 0;
  at::TensorOptions options_;
};

} // namespace pedagogy::models
