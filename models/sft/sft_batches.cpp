// The seeded order of SFT examples in rows, micro-batches and steps (see sft_batches.hpp).
#include "models/sft/sft_batches.hpp"

#include "runtime/errors.hpp"
#include "runtime/seeds.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace pedagogy::models {

namespace {

// Fisher-Yates with splitmix64: the same order on every platform.
void shuffle(std::vector<size_t>& v, uint64_t seed) {
  uint64_t state = seed;
  for (size_t i = v.size(); i > 1; --i)
    std::swap(v[i - 1], v[splitmix64(state) % i]);
}

} // namespace

std::vector<sft_micro_batch> plan_epoch(const std::vector<sft_example>& examples,
                                        const sft_plan_options& options, int64_t epoch) {
  PEDAGOGY_CHECK(options.micro_batch_size >= 1 && options.max_length >= 1, "bad plan options");
  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), size_t{0});
  const uint64_t seed = derive_seed(options.seed, static_cast<uint64_t>(epoch));
  if (options.shuffle)
    shuffle(order, seed);
  const auto size = static_cast<size_t>(options.micro_batch_size);
  std::vector<std::vector<size_t>> rows;
  if (options.pack) {
    std::vector<int64_t> used; // tokens in each row
    int64_t shortest = options.max_length;
    for (const auto& e : examples)
      shortest = std::min(shortest, static_cast<int64_t>(e.tokens.size()));
    size_t open = 0; // rows before it cannot take even the shortest example
    for (size_t i : order) {
      const auto length = static_cast<int64_t>(examples[i].tokens.size());
      PEDAGOGY_CHECK(length <= options.max_length, "example of {} tokens past max_length {}",
                     length, options.max_length);
      while (open < rows.size() && used[open] + shortest > options.max_length)
        ++open;
      size_t r = open;
      while (r < rows.size() && used[r] + length > options.max_length)
        ++r;
      if (r == rows.size()) {
        rows.emplace_back();
        used.push_back(0);
      }
      rows[r].push_back(i);
      used[r] += length;
    }
  } else {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return examples[a].tokens.size() < examples[b].tokens.size();
    });
    for (size_t i : order)
      rows.push_back({i});
  }
  std::vector<sft_micro_batch> out;
  for (size_t begin = 0; begin < rows.size(); begin += size) {
    sft_micro_batch m;
    m.rows.assign(rows.begin() + static_cast<std::ptrdiff_t>(begin),
                  rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), begin + size)));
    out.push_back(std::move(m));
  }
  if (!options.pack && options.shuffle) {
    // Buckets of similar length, in a seeded order, so lengths do not rise through the epoch.
    std::vector<size_t> batch_order(out.size());
    std::iota(batch_order.begin(), batch_order.end(), size_t{0});
    shuffle(batch_order, derive_seed(seed, 1));
    std::vector<sft_micro_batch> shuffled;
    for (size_t b : batch_order)
      shuffled.push_back(std::move(out[b]));
    out = std::move(shuffled);
  }
  return out;
}

std::vector<sft_step_plan> plan_steps(const std::vector<sft_example>& examples,
                                      const sft_plan_options& options, int64_t epochs) {
  PEDAGOGY_CHECK(options.gradient_accumulation >= 1, "bad gradient_accumulation");
  const auto accumulate = static_cast<size_t>(options.gradient_accumulation);
  std::vector<sft_step_plan> out;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    auto micro = plan_epoch(examples, options, epoch);
    for (size_t begin = 0; begin < micro.size(); begin += accumulate) {
      sft_step_plan step;
      step.epoch = epoch;
      const size_t end = std::min(micro.size(), begin + accumulate);
      for (size_t i = begin; i < end; ++i)
        step.micro_batches.push_back(std::move(micro[i]));
      out.push_back(std::move(step));
    }
  }
  return out;
}

sft_split split_validation(std::vector<sft_example> examples, double fraction, uint64_t seed) {
  sft_split out;
  const auto n = examples.size();
  size_t held = 0;
  if (fraction > 0 && n >= 2)
    held = std::clamp<size_t>(static_cast<size_t>(std::llround(fraction * static_cast<double>(n))),
                              1, n - 1);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  shuffle(order, derive_seed(seed, 0x5f7));
  std::vector<uint8_t> is_val(n, 0);
  for (size_t k = 0; k < held; ++k)
    is_val[order[k]] = 1;
  for (size_t i = 0; i < n; ++i)
    (is_val[i] ? out.val : out.train).push_back(std::move(examples[i]));
  return out;
}

} // namespace pedagogy::models
