// The paged KV cache (see kv_cache.hpp).
#include "models/serving/kv_cache.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

namespace pedagogy::models {

kv_pool::kv_pool(int64_t layers, int64_t kv_heads, int64_t head_dim, at::TensorOptions options,
                 int64_t block_tokens, int64_t max_blocks)
  : kv_heads_(kv_heads), head_dim_(head_dim), block_tokens_(block_tokens), max_blocks_(max_blocks),
    options_(options) {
  PEDAGOGY_CHECK(block_tokens > 0 && max_blocks >= 0, "kv_pool: {} tokens per block, {} blocks",
                 block_tokens, max_blocks);
  k_.resize(static_cast<size_t>(layers));
  v_.resize(static_cast<size_t>(layers));
}

int64_t kv_pool::blocks_free() const {
  return max_blocks_ == 0 ? std::numeric_limits<int64_t>::max() : max_blocks_ - used_;
}

int64_t kv_pool::bytes() const {
  const auto per_block =
    kv_heads_ * block_tokens_ * head_dim_ * static_cast<int64_t>(options_.dtype().itemsize());
  return 2 * static_cast<int64_t>(k_.size()) * capacity_ * per_block;
}

void kv_pool::grow(int64_t blocks) {
  if (blocks <= capacity_)
    return;
  int64_t target = std::max(blocks, 2 * capacity_);
  if (max_blocks_ > 0)
    target = std::min(target, max_blocks_);
  PEDAGOGY_CHECK(target >= blocks, "kv_pool: {} blocks asked of a budget of {}", blocks,
                 max_blocks_);
  for (size_t l = 0; l < k_.size(); ++l) {
    for (auto* store : {&k_[l], &v_[l]}) {
      // Zeros, not empty: batched decode reads whole blocks and masks the positions past a
      // sequence's end, and a masked score times a NaN left in reused memory is still NaN.
      at::Tensor bigger = at::zeros({kv_heads_, target, block_tokens_, head_dim_}, options_);
      if (capacity_ > 0)
        bigger.narrow(1, 0, capacity_).copy_(*store);
      *store = bigger;
    }
  }
  // The new blocks go under the free ones, so blocks are taken lowest index first and a lone
  // sequence's blocks stay consecutive.
  std::vector<int64_t> added;
  for (int64_t b = target - 1; b >= capacity_; --b)
    added.push_back(b);
  free_.insert(free_.begin(), added.begin(), added.end());
  refs_.resize(static_cast<size_t>(target), 0);
  capacity_ = target;
}

int64_t kv_pool::take() {
  PEDAGOGY_CHECK(!free_.empty(), "kv_pool: no free block ({} of {} used)", used_, max_blocks_);
  const int64_t block = free_.back();
  free_.pop_back();
  refs_[static_cast<size_t>(block)] = 1;
  ++used_;
  return block;
}

void kv_pool::hold(int64_t block) {
  ++refs_[static_cast<size_t>(block)];
}

void kv_pool::drop(int64_t block) {
  int32_t& refs = refs_[static_cast<size_t>(block)];
  PEDAGOGY_CHECK(refs > 0, "kv_pool: block {} dropped more often than held", block);
  if (--refs == 0) {
    free_.push_back(block);
    --used_;
  }
}

void kv_pool::copy_block(int64_t from, int64_t to) {
  for (size_t l = 0; l < k_.size(); ++l) {
    k_[l].select(1, to).copy_(k_[l].select(1, from));
    v_[l].select(1, to).copy_(v_[l].select(1, from));
  }
}

sequence_kv::sequence_kv(std::shared_ptr<kv_pool> pool) : pool_(std::move(pool)) {}

sequence_kv::~sequence_kv() {
  clear();
}

sequence_kv::sequence_kv(sequence_kv&& other) noexcept
  : pool_(std::move(other.pool_)), blocks_(std::move(other.blocks_)), length_(other.length_) {
  other.blocks_.clear();
  other.length_ = 0;
}

sequence_kv& sequence_kv::operator=(sequence_kv&& other) noexcept {
  if (this != &other) {
    clear();
    pool_ = std::move(other.pool_);
    blocks_ = std::move(other.blocks_);
    length_ = other.length_;
    other.blocks_.clear();
    other.length_ = 0;
  }
  return *this;
}

int64_t sequence_kv::blocks_needed(int64_t tokens) const {
  if (tokens <= 0)
    return 0;
  const int64_t end = blocks_for(length_ + tokens, pool_->block_tokens());
  const auto have = static_cast<int64_t>(blocks_.size());
  int64_t needed = std::max<int64_t>(end - have, 0);
  for (int64_t i = length_ / pool_->block_tokens(); i < std::min(end, have); ++i)
    if (pool_->holders(blocks_[static_cast<size_t>(i)]) > 1)
      ++needed; // shared: written into, so copied first
  return needed;
}

bool sequence_kv::reserve(int64_t tokens) {
  const int64_t needed = blocks_needed(tokens);
  if (needed == 0)
    return true;
  if (needed > pool_->blocks_free())
    return false;
  pool_->grow(pool_->blocks_used() + needed);
  const int64_t bs = pool_->block_tokens();
  const int64_t end = blocks_for(length_ + tokens, bs);
  for (int64_t i = length_ / bs; i < std::min<int64_t>(end, blocks_.size()); ++i) {
    int64_t& block = blocks_[static_cast<size_t>(i)];
    if (pool_->holders(block) == 1)
      continue;
    const int64_t own = pool_->take();
    if (i * bs < length_) // it holds committed tokens: they come along
      pool_->copy_block(block, own);
    pool_->drop(block);
    block = own;
  }
  while (static_cast<int64_t>(blocks_.size()) < end)
    blocks_.push_back(pool_->take());
  return true;
}

void sequence_kv::advance(int64_t tokens) {
  length_ += tokens;
}

void sequence_kv::truncate(int64_t tokens) {
  PEDAGOGY_CHECK(tokens >= 0 && tokens <= length_, "truncate to {} of {} tokens", tokens, length_);
  length_ = tokens;
  if (pool_)
    release_from(static_cast<size_t>(blocks_for(tokens, pool_->block_tokens())));
}

sequence_kv sequence_kv::fork() const {
  sequence_kv copy(pool_);
  const auto shared = static_cast<size_t>(blocks_for(length_, pool_->block_tokens()));
  for (size_t i = 0; i < shared; ++i) {
    pool_->hold(blocks_[i]);
    copy.blocks_.push_back(blocks_[i]);
  }
  copy.length_ = length_;
  return copy;
}

void sequence_kv::clear() {
  if (pool_)
    release_from(0);
  length_ = 0;
}

void sequence_kv::release_from(size_t first_block) {
  for (size_t i = first_block; i < blocks_.size(); ++i)
    pool_->drop(blocks_[i]);
  blocks_.resize(std::min(first_block, blocks_.size()));
}

} // namespace pedagogy::models
