// Portable seeded randomness for everything that must replay exactly (data order, sampling
// seeds, generated problems): splitmix64 (Steele, Lea and Flood 2014), never the standard
// library's distributions, whose outputs differ between implementations.
#pragma once

#include <cstdint>

namespace pedagogy {

// The splitmix64 output function: a bijective avalanche of 64 bits.
inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Advances `state` by the golden-ratio increment and returns the next value.
inline uint64_t splitmix64(uint64_t& state) {
  return splitmix64_mix(state += 0x9E3779B97F4A7C15ull);
}

// The `counter`-th value of the stream that starts at `seed` (no state to carry).
inline uint64_t stream_value(uint64_t seed, uint64_t counter) {
  return splitmix64_mix(seed + 0x9E3779B97F4A7C15ull * (counter + 1));
}

// A seed for `key` under `seed` (keys combined one after another, e.g. step, problem, sample).
inline uint64_t derive_seed(uint64_t seed, uint64_t key) {
  return splitmix64_mix(seed ^ (key + 0x9E3779B97F4A7C15ull + (seed << 6) + (seed >> 2)));
}

} // namespace pedagogy
