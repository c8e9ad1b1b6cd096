// A number in a math answer: its exact digits when it is written as a decimal (times a power of
// ten), so that it compares by value even past double's range ("1e400") or precision (20-digit
// integers), and a double for everything else (fractions, roots, pi). Used by answer_check.cpp;
// header-only because nothing else needs it.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace pedagogy::classroom {

// Decimal exponents beyond this are not read as numbers: far past any real answer, and sums of a
// few of them stay inside int64_t.
inline constexpr int64_t max_decimal_exponent = 1'000'000'000'000'000;

// (-1)^negative × digits × 10^exponent, the digits without leading or trailing zeros (zero: no
// digits, not negative), so equal values have equal fields.
struct exact_decimal {
  bool negative = false;
  std::string digits;
  int64_t exponent = 0;
  bool operator==(const exact_decimal&) const = default;
};

// An integer with an optional sign, all of `s`; none when it is not one or its size exceeds
// max_decimal_exponent.
inline std::optional<int64_t> read_exponent(std::string_view s) {
  const bool negative = s.starts_with('-');
  if (s.starts_with('-') || s.starts_with('+'))
    s.remove_prefix(1);
  const bool all_digits = std::all_of(
    s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
  int64_t v = 0;
  if (s.empty() || !all_digits ||
      std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc() ||
      v > max_decimal_exponent)
    return std::nullopt;
  return negative ? -v : v;
}

// "12.50", "5.", ".5", "3e-4", "1E400": digits with at most one point, then an optional exponent.
inline std::optional<exact_decimal> read_exact_decimal(std::string_view s) {
  exact_decimal d;
  size_t i = 0;
  bool point = false, any_digit = false;
  for (;
       i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || (s[i] == '.' && !point));
       ++i) {
    if (s[i] == '.') {
      point = true;
      continue;
    }
    any_digit = true;
    if (!d.digits.empty() || s[i] != '0')
      d.digits += s[i];
    if (point)
      --d.exponent;
  }
  if (!any_digit)
    return std::nullopt;
  if (i < s.size()) {
    const auto exponent =
      s[i] == 'e' || s[i] == 'E' ? read_exponent(s.substr(i + 1)) : std::nullopt;
    if (!exponent)
      return std::nullopt;
    d.exponent += *exponent;
  }
  while (!d.digits.empty() && d.digits.back() == '0') {
    d.digits.pop_back();
    ++d.exponent;
  }
  if (d.digits.empty())
    d.exponent = 0;
  return d;
}

// The nearest double; NaN when out of double's range, so that it is close to nothing.
inline double to_double(const exact_decimal& d) {
  if (d.digits.empty())
    return 0.0;
  const std::string text = fmt::format("{}e{}", d.digits, d.exponent);
  double v = 0;
  if (std::from_chars(text.data(), text.data() + text.size(), v).ec != std::errc())
    return std::numeric_limits<double>::quiet_NaN();
  return d.negative ? -v : v;
}

struct answer_number {
  double approx = 0;                  // always set; NaN or infinite when out of range
  std::optional<exact_decimal> exact; // when written as a decimal, times a power of ten
};

inline answer_number exactly(const exact_decimal& d) {
  return {to_double(d), d};
}

inline answer_number approximately(double v) {
  return {v, std::nullopt};
}

inline answer_number negated(answer_number n) {
  n.approx = -n.approx;
  if (n.exact && !n.exact->digits.empty())
    n.exact->negative = !n.exact->negative;
  return n;
}

// n × 10^power; none when the exponent would leave the readable range.
inline std::optional<answer_number> times_power_of_ten(answer_number n, int64_t power) {
  if (!n.exact)
    return approximately(n.approx * std::pow(10.0, static_cast<double>(power)));
  if (!n.exact->digits.empty())
    n.exact->exponent += power;
  if (std::abs(n.exact->exponent) > max_decimal_exponent)
    return std::nullopt;
  return exactly(*n.exact);
}

// Equal when both are exact and their digits agree, or else within a relative 1e-9 as doubles
// (never when either is out of double's range).
inline bool same_number(const answer_number& a, const answer_number& b) {
  if (a.exact && b.exact)
    return *a.exact == *b.exact;
  return std::isfinite(a.approx) && std::isfinite(b.approx) &&
         std::abs(a.approx - b.approx) <=
           1e-9 * std::max({1.0, std::abs(a.approx), std::abs(b.approx)});
}

} // namespace pedagogy::classroom
