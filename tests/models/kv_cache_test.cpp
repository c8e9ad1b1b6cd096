// The paged KV pool: growing keeps what was written and clears the rest; forks share blocks,
// copy-on-write keeps the parent, release returns blocks, the budget holds.
#include "models/serving/kv_cache.hpp"
#include "tests/support/torch_doctest.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

using namespace pedagogy::models;

TEST_CASE("a grown KV pool holds no garbage: batched decode masks unwritten rows, 0 x NaN is NaN") {
  // Freed memory full of NaN, of the pool's size, so a pool allocated without clearing would
  // likely be handed these very bytes.
  constexpr int64_t layers = 2, kv_heads = 2, head_dim = 8, block = 16;
  for (int round = 0; round < 3; ++round) {
    {
      at::Tensor junk = at::full({kv_heads * 4 * block * head_dim}, std::nanf(""), at::kFloat);
      (void)junk;
    }
    auto pool = std::make_shared<kv_pool>(layers, kv_heads, head_dim,
                                          at::TensorOptions().dtype(at::kFloat), block);
    sequence_kv first(pool);
    REQUIRE(first.reserve(4 * block)); // four blocks
    REQUIRE(pool->blocks_allocated() == 4);
    for (size_t l = 0; l < layers; ++l) {
      CHECK(at::isfinite(pool->keys(l)).all().item<bool>());
      CHECK(at::isfinite(pool->values(l)).all().item<bool>());
    }
    // Growing keeps what was written and clears the rest.
    pool->keys(0).fill_(1.0f);
    sequence_kv second(pool);
    REQUIRE(second.reserve(200));
    const int64_t blocks = pool->blocks_allocated();
    CHECK(blocks >= 4 + 13);
    CHECK(pool->keys(0).narrow(1, 0, 4).eq(1.0f).all().item<bool>());
    CHECK(pool->keys(0).narrow(1, 4, blocks - 4).eq(0.0f).all().item<bool>());
  }
}

namespace {

// Keys [K, T, D] of tokens first .. first + T - 1 of sequence `salt`, each value distinct.
at::Tensor token_keys(int64_t kv_heads, int64_t head_dim, int64_t first, int64_t T, int64_t salt) {
  at::Tensor t = at::arange(first, first + T, at::kFloat).view({1, T, 1});
  at::Tensor k = at::arange(kv_heads, at::kFloat).view({kv_heads, 1, 1});
  at::Tensor d = at::arange(head_dim, at::kFloat).view({1, 1, head_dim});
  return t * 100 + k * 10 + d + static_cast<float>(salt) * 100000; // [K, T, D]
}

// The committed keys (or values) of `kv` in `layer`, read through its block table: [K, S, D].
at::Tensor stored(kv_pool& pool, const sequence_kv& kv, size_t layer, bool values) {
  const at::Tensor& store = values ? pool.values(layer) : pool.keys(layer);
  const auto used = static_cast<int64_t>(kv.blocks().size());
  return store.index_select(1, at::tensor(kv.blocks(), at::kLong))
    .view({store.size(0), used * pool.block_tokens(), store.size(3)})
    .narrow(1, 0, kv.length());
}

} // namespace

TEST_CASE("a paged KV pool: forks share blocks, copy-on-write keeps the parent, release returns") {
  constexpr int64_t layers = 2, K = 2, D = 4, block = 4, budget = 8;
  auto pool =
    std::make_shared<kv_pool>(layers, K, D, at::TensorOptions().dtype(at::kFloat), block, budget);
  // Appends T tokens of sequence `salt` to every layer (values are the negated keys), token t
  // at offset t % block of block blocks()[t / block], as the packed forward writes them.
  auto append = [&](sequence_kv& kv, int64_t T, int64_t salt) {
    REQUIRE(kv.reserve(T));
    at::Tensor k = token_keys(K, D, kv.length(), T, salt);
    for (size_t l = 0; l < layers; ++l)
      for (int64_t i = 0; i < T; ++i) {
        const int64_t t = kv.length() + i, b = kv.blocks()[static_cast<size_t>(t / block)];
        pool->keys(l)
          .select(1, b)
          .select(1, t % block)
          .copy_(k.select(1, i) + static_cast<float>(l));
        pool->values(l).select(1, b).select(1, t % block).copy_(-k.select(1, i));
      }
    kv.advance(T);
  };
  auto holds = [&](const sequence_kv& kv, const std::vector<std::pair<int64_t, int64_t>>& runs) {
    at::Tensor expected = at::cat(
      [&] {
        std::vector<at::Tensor> parts;
        int64_t position = 0;
        for (auto [length, salt] : runs) {
          parts.push_back(token_keys(K, D, position, length, salt));
          position += length;
        }
        return parts;
      }(),
      /*dim=*/1);
    for (size_t l = 0; l < layers; ++l) {
      CHECK(at::equal(stored(*pool, kv, l, false), expected + static_cast<float>(l)));
      CHECK(at::equal(stored(*pool, kv, l, true), -expected));
    }
  };

  sequence_kv parent(pool);
  append(parent, 6, 1); // blocks: 4 + 2 tokens
  CHECK(pool->blocks_used() == 2);
  CHECK(parent.blocks().size() == 2);

  // A fork takes no block; its first write copies only the shared, partly filled last block.
  sequence_kv child = parent.fork();
  CHECK(pool->blocks_used() == 2);
  CHECK(child.blocks() == parent.blocks());
  CHECK(pool->holders(parent.blocks()[1]) == 2);
  append(child, 1, 2);
  CHECK(pool->blocks_used() == 3); // one more on fork + write
  CHECK(child.blocks()[0] == parent.blocks()[0]);
  CHECK(child.blocks()[1] != parent.blocks()[1]);
  CHECK(pool->holders(parent.blocks()[0]) == 2);
  CHECK(pool->holders(parent.blocks()[1]) == 1);
  holds(parent, {{6, 1}});        // untouched by the child's write
  holds(child, {{6, 1}, {1, 2}}); // the parent's tokens, then its own
  append(parent, 2, 3);           // the parent writes its own block in place
  CHECK(pool->blocks_used() == 3);
  holds(parent, {{6, 1}, {2, 3}});
  holds(child, {{6, 1}, {1, 2}});

  // Past the budget a reservation fails and changes nothing.
  sequence_kv long_child = parent.fork(); // 8 tokens: two full blocks shared
  CHECK(pool->blocks_used() == 3);
  CHECK(long_child.blocks_needed(25) == 7);
  CHECK_FALSE(long_child.reserve(25));
  CHECK(long_child.blocks() == parent.blocks());
  CHECK(pool->blocks_used() == 3);
  append(long_child, 20, 4); // 5 new blocks: the budget, exactly
  CHECK(pool->blocks_used() == budget);
  CHECK(pool->blocks_free() == 0);
  CHECK(child.reserve(1));       // its last block has room for one more token
  CHECK_FALSE(child.reserve(2)); // but not for two
  holds(long_child, {{6, 1}, {2, 3}, {20, 4}});
  CHECK(pool->blocks_allocated() <= budget);

  // Truncating and clearing give blocks back once no sequence holds them.
  long_child.truncate(9); // keeps 3 blocks: two shared, one its own
  CHECK(pool->blocks_used() == 3 + 1);
  parent.clear();
  CHECK(pool->blocks_used() == 4); // the shared blocks are still held by the forks
  child.clear();
  CHECK(pool->blocks_used() == 3);
  holds(long_child, {{6, 1}, {2, 3}, {1, 4}});
  long_child.clear();
  CHECK(pool->blocks_used() == 0);
  sequence_kv whole(pool);
  append(whole, budget * block, 5); // every block again
  CHECK(pool->blocks_used() == budget);
  CHECK(pool->blocks_allocated() == budget);
}
