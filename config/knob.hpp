// What the loader and the rules know about a key besides its name and type: its range and
// whether the feature behind it is built. Written once per key in config/fields.hpp.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace pedagogy::config {

// Which ends of a real key's range belong to it.
enum class ends { closed, open_low, open_high, open };

struct knob {
  // Every integer key, and every element of an integer list, has a range; a value outside it is
  // refused where it was written (file:line:column or the override), before anything runs, so
  // that a typo cannot hang the process or exhaust its memory.
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
  // Every real key has one too: a value past what the arithmetic behind it holds (a duration
  // added to a clock, a ratio cast to float) would otherwise overflow far from the config.
  // Not a number and infinities lie outside every range.
  double low = -std::numeric_limits<double>::max();
  double high = std::numeric_limits<double>::max();
  ends real_ends = ends::closed;
  std::string_view hint; // what the values mean, shown with a refused value
  // false: the feature that reads the key is not built yet, so only its default is accepted.
  // The key stays in the schema (and in `config show`) so that files keep their format.
  bool built = true;
  // A secret (a token) is never written where the resolved config is saved or shown.
  bool secret = false;
};

// An integer key's range, e.g. range(0, 256, "0 uses one thread per core").
constexpr knob range(int64_t min, int64_t max, std::string_view hint = {}) {
  knob k;
  k.min = min;
  k.max = max;
  k.hint = hint;
  return k;
}

// A real key's range, e.g. real(0, 1, "1 turns nucleus sampling off", ends::open_low) for (0, 1].
constexpr knob real(double low, double high, std::string_view hint = {}, ends e = ends::closed) {
  knob k;
  k.low = low;
  k.high = high;
  k.real_ends = e;
  k.hint = hint;
  return k;
}

// A string key that holds a secret.
constexpr knob secret() {
  knob k;
  k.secret = true;
  return k;
}

// A key whose feature is not built yet: unbuilt(), or unbuilt(range(1, 1024)).
constexpr knob unbuilt(knob k = {}) {
  k.built = false;
  return k;
}

// Throws input_error at `where` when an integer (or an element of an integer list, named
// "key[i]") lies outside the knob's range; other types have no range.
void check_range(const std::string& where, const std::string& key, int64_t value, const knob& k);
void check_range(const std::string& where, const std::string& key,
                 const std::vector<int64_t>& values, const knob& k);
void check_range(const std::string& where, const std::string& key, double value, const knob& k);
template <class T>
void check_range(const std::string&, const std::string&, const T&, const knob&) {}

// Throws the input_error for a key that is set although its feature is not built yet.
[[noreturn]] void refuse_unbuilt(const std::string& where, const std::string& key);

} // namespace pedagogy::config
