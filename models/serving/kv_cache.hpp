// KV caches of sequences, stored in a paged pool: per layer one tensor [K, blocks, block, D] of
// fixed-size blocks, and per sequence a block table naming its blocks in order. Memory is
// bounded by the pool's block budget (storage grows by doubling, never past it), a sequence
// holds only the blocks its tokens fill, and a fork shares its parent's blocks: a block is copied
// only when a sequence writes into one that another sequence also holds (copy-on-write).
//
// Key heads come first in the storage so that gathering the blocks of B sequences, M each,
// gives [K, B * M, block, D], which is [K * B, M * block, D] without a copy: the batch of
// matrices decode attention multiplies.
//
// Blocks are reserved before a forward runs (reserve() may grow the storage and copy shared
// blocks), so no view a forward holds is invalidated while its layers run.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace pedagogy::models {

// Blocks of `block_tokens` tokens that hold `tokens` tokens.
inline int64_t blocks_for(int64_t tokens, int64_t block_tokens) {
  return (tokens + block_tokens - 1) / block_tokens;
}

class kv_pool {
public:
  // `max_blocks`: the budget, 0 = unbounded (a pool of one's own, sized by its sequence).
  kv_pool(int64_t layers, int64_t kv_heads, int64_t head_dim, at::TensorOptions options,
          int64_t block_tokens = 16, int64_t max_blocks = 0);

  at::Tensor& keys(size_t layer) { // [K, blocks, block, D]
    return k_[layer];
  }
  at::Tensor& values(size_t layer) {
    return v_[layer];
  }
  int64_t block_tokens() const {
    return block_tokens_;
  }
  int64_t kv_heads() const {
    return kv_heads_;
  }
  // The most blocks this pool may hold; 0 = unbounded.
  int64_t block_budget() const {
    return max_blocks_;
  }
  // Blocks held by at least one sequence.
  int64_t blocks_used() const {
    return used_;
  }
  // Blocks that can still be taken, counting storage not allocated yet.
  int64_t blocks_free() const;
  // Blocks the storage has room for (allocated lazily, up to the budget).
  int64_t blocks_allocated() const {
    return capacity_;
  }
  // Bytes of key and value storage allocated.
  int64_t bytes() const;
  // Allocates storage for the whole budget now, so it never grows later (a bounded pool only).
  void allocate_budget() {
    if (max_blocks_ > 0)
      grow(max_blocks_);
  }
  // How many sequences hold `block`.
  int32_t holders(int64_t block) const {
    return refs_[static_cast<size_t>(block)];
  }

private:
  friend class sequence_kv;

  int64_t take(); // one free block, held once; the caller checked blocks_free()
  void hold(int64_t block);
  void drop(int64_t block);
  void copy_block(int64_t from, int64_t to);
  // Makes the storage hold at least `blocks` blocks (they must fit the budget).
  void grow(int64_t blocks);

  std::vector<at::Tensor> k_;
  std::vector<at::Tensor> v_;
  std::vector<int32_t> refs_; // per allocated block: sequences holding it
  std::vector<int64_t> free_; // allocated blocks nobody holds; the lowest index on top
  int64_t capacity_ = 0;      // blocks allocated
  int64_t used_ = 0;          // blocks with refs_ > 0
  int64_t kv_heads_;
  int64_t head_dim_;
  int64_t block_tokens_;
  int64_t max_blocks_;
  at::TensorOptions options_;
};

// One sequence's cache: a block table in a pool and the number of tokens committed to it.
// Token t lives in block blocks()[t / block_tokens] at offset t % block_tokens. A forward first
// reserve()s room for its new tokens, writes every layer, then advance()s the length once.
class sequence_kv {
public:
  sequence_kv() = default;
  explicit sequence_kv(std::shared_ptr<kv_pool> pool);
  ~sequence_kv();
  sequence_kv(sequence_kv&& other) noexcept;
  sequence_kv& operator=(sequence_kv&& other) noexcept;
  sequence_kv(const sequence_kv&) = delete;
  sequence_kv& operator=(const sequence_kv&) = delete;

  // Blocks reserve(tokens) would take from the pool.
  int64_t blocks_needed(int64_t tokens) const;
  // Makes tokens [length, length + tokens) writable: new blocks for positions past the table,
  // and a private copy of a block it would write into that another sequence also holds.
  // Returns false, changing nothing, when the pool's budget cannot give the blocks needed.
  bool reserve(int64_t tokens);
  void advance(int64_t tokens);
  // Keeps the first `tokens` tokens and gives back the blocks past them.
  void truncate(int64_t tokens);
  // The committed tokens in the same blocks (n > 1 samples of one prompt): no copy is made
  // until one of them writes into a shared block.
  sequence_kv fork() const;
  // Gives the blocks back; the sequence is empty afterwards and keeps its pool.
  void clear();

  int64_t length() const {
    return length_;
  }
  bool empty() const {
    return length_ == 0;
  }
  const std::vector<int64_t>& blocks() const {
    return blocks_;
  }
  kv_pool* pool() const {
    return pool_.get();
  }

private:
  void release_from(size_t first_block); // drops blocks_[first_block..]

  std::shared_ptr<kv_pool> pool_;
  std::vector<int64_t> blocks_; // the block table: ceil(length / block) blocks, more if reserved
  int64_t length_ = 0;
};

} // namespace pedagogy::models
