// Generated word problems (see problem_generator.hpp). Each kind below is one template: it draws
// its numbers so that the answer is exact and the story makes sense (no negative apples), and
// states the answer the way a grader expects it (integers, or a/b in lowest terms).
#include "classroom/problem_generator.hpp"

#include "runtime/errors.hpp"
#include "runtime/seeds.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <array>
#include <numeric>
#include <set>
#include <string>

namespace pedagogy::classroom {

namespace {

// splitmix64 (runtime/seeds.hpp): portable, good enough to pick numbers for word problems.
class draw {
public:
  explicit draw(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    return splitmix64(state_);
  }
  // Uniform in [lo, hi] (the modulo bias is irrelevant at these ranges).
  int64_t between(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }
  template <class T, size_t N>
  const T& pick(const std::array<T, N>& items) {
    return items[next() % N];
  }

private:
  uint64_t state_;
};

const std::array<const char*, 12> names = {"Maya",  "Leo",  "Priya", "Omar",  "Lena", "Kofi",
                                           "Sofia", "Ravi", "Emma",  "Jonas", "Aiko", "Mateo"};

std::string fraction(int64_t num, int64_t den) {
  const int64_t g = std::gcd(num, den);
  num /= g;
  den /= g;
  if (den < 0) {
    num = -num;
    den = -den;
  }
  return den == 1 ? std::to_string(num) : fmt::format("{}/{}", num, den);
}

using maker = problem (*)(draw&);

problem shopping(draw& d) {
  const auto* who = d.pick(names);
  const int64_t n = d.between(3, 12), price = d.between(2, 15), paid = (n * price / 10 + 1) * 10;
  return {fmt::format("{} buys {} notebooks at ${} each and pays with ${}. How many dollars of "
                      "change does {} get?",
                      who, n, price, paid, who),
          std::to_string(paid - n * price)};
}

problem sharing(draw& d) {
  const auto* who = d.pick(names);
  const int64_t friends = d.between(3, 9), each = d.between(4, 15),
                left = d.between(0, friends - 1);
  return {fmt::format("{} has {} marbles and shares them equally among {} friends, giving each "
                      "friend as many as possible. How many marbles are left over?",
                      who, friends * each + left, friends),
          std::to_string(left)};
}

problem speed(draw& d) {
  const int64_t v = d.between(4, 24) * 5, hours = d.between(2, 6);
  return {fmt::format("A train travels {} km in {} hours at a constant speed. What is its speed "
                      "in km per hour?",
                      v * hours, hours),
          std::to_string(v)};
}

problem travel_time(draw& d) {
  const int64_t v = d.between(3, 12) * 10, minutes = d.between(1, 5) * 30;
  const int64_t km = v * minutes / 60;
  return {fmt::format("A cyclist rides {} km at {} km per hour. How many minutes does the ride "
                      "take?",
                      km, v),
          std::to_string(minutes)};
}

problem rectangle_area(draw& d) {
  const int64_t w = d.between(3, 20), h = d.between(3, 20);
  return {fmt::format("A rectangular garden is {} m long and {} m wide. What is its area in square "
                      "metres?",
                      w, h),
          std::to_string(w * h)};
}

problem rectangle_side(draw& d) {
  const int64_t w = d.between(3, 25), h = d.between(3, 25);
  return {fmt::format("A rectangle has a perimeter of {} cm and one side of {} cm. How long, in "
                      "cm, is the other side?",
                      2 * (w + h), w),
          std::to_string(h)};
}

problem percent_of(draw& d) {
  const int64_t pct = d.pick(std::array<int64_t, 8>{10, 15, 20, 25, 30, 40, 60, 75});
  const int64_t base = d.between(2, 30) * 20;
  return {fmt::format("A school has {} students and {}% of them walk to school. How many students "
                      "walk to school?",
                      base, pct),
          fraction(base * pct, 100)};
}

problem discount(draw& d) {
  const int64_t pct = d.pick(std::array<int64_t, 6>{10, 20, 25, 30, 40, 50});
  const int64_t price = d.between(2, 40) * 20;
  return {fmt::format("A jacket costs ${}. It is on sale for {}% off. What is the sale price in "
                      "dollars?",
                      price, pct),
          fraction(price * (100 - pct), 100)};
}

problem linear(draw& d) {
  const int64_t a = d.between(2, 9), x = d.between(-12, 15), b = d.between(-20, 30);
  const std::string sign = b < 0 ? "-" : "+";
  return {fmt::format("Solve for x: {}x {} {} = {}.", a, sign, b < 0 ? -b : b, a * x + b),
          std::to_string(x)};
}

problem linear_both_sides(draw& d) {
  const int64_t a = d.between(3, 9), c = d.between(1, a - 1), x = d.between(-10, 12);
  const int64_t b = d.between(1, 25), rhs = a * x + b - c * x;
  return {fmt::format("Find x if {}x + {} = {}x + {}.", a, b, c, rhs), std::to_string(x)};
}

problem linear_fraction(draw& d) {
  const int64_t a = d.between(2, 9), b = d.between(1, 20), c = d.between(b + 1, b + 40);
  return {fmt::format("Solve {}x + {} = {} for x. Give the answer as a fraction in lowest terms "
                      "if it is not a whole number.",
                      a, b, c),
          fraction(c - b, a)};
}

problem ages(draw& d) {
  const auto* who = d.pick(names);
  const int64_t child = d.between(4, 15), factor = d.between(2, 5), years = d.between(2, 10);
  return {fmt::format("{}'s mother is {} times as old as {}. In {} years, the sum of their ages "
                      "will be {}. How old is {} now?",
                      who, factor, who, years, child * (factor + 1) + 2 * years, who),
          std::to_string(child)};
}

problem consecutive(draw& d) {
  const int64_t n = d.between(3, 5), first = d.between(1, 60);
  return {fmt::format("The sum of {} consecutive integers is {}. What is the smallest of them?", n,
                      n * first + n * (n - 1) / 2),
          std::to_string(first)};
}

problem average(draw& d) {
  const int64_t n = d.between(3, 5), mean = d.between(60, 84); // the answer stays <= 100
  std::vector<int64_t> scores(static_cast<size_t>(n));
  int64_t sum = 0;
  for (int64_t i = 0; i + 1 < n; ++i)
    sum += scores[static_cast<size_t>(i)] = mean + d.between(-5, 4);
  std::string listed;
  for (int64_t i = 0; i + 1 < n; ++i)
    listed += (i ? ", " : "") + std::to_string(scores[static_cast<size_t>(i)]);
  return {fmt::format("A student scored {} on the first {} tests. What score on the next test "
                      "makes the average of all {} tests exactly {}?",
                      listed, n - 1, n, mean),
          std::to_string(mean * n - sum)};
}

problem fraction_sum(draw& d) {
  const int64_t a = d.between(1, 5), b = d.between(a + 1, 9), c = d.between(1, 5),
                e = d.between(c + 1, 9);
  return {fmt::format("What is {}/{} + {}/{}? Give the answer as a fraction in lowest terms.", a, b,
                      c, e),
          fraction(a * e + c * b, b * e)};
}

problem fraction_of(draw& d) {
  const auto* who = d.pick(names);
  const int64_t den = d.between(3, 8), num = d.between(1, den - 1), pages = den * d.between(4, 20);
  return {fmt::format("A book has {} pages. {} has read {}/{} of it. How many pages are left to "
                      "read?",
                      pages, who, num, den),
          std::to_string(pages - pages / den * num)};
}

problem ratio(draw& d) {
  const int64_t r1 = d.between(1, 6), r2 = d.between(1, 6), k = d.between(2, 12);
  return {fmt::format("Red and blue beads are in the ratio {}:{}. There are {} beads in total. How "
                      "many are blue?",
                      r1, r2, (r1 + r2) * k),
          std::to_string(r2 * k)};
}

problem work_rate(draw& d) {
  const int64_t pairs[][2] = {{2, 3}, {3, 6}, {4, 12}, {6, 3}, {10, 15}, {12, 6}, {20, 5}, {4, 4}};
  const auto& p = pairs[d.next() % 8];
  return {fmt::format("One pump fills a tank in {} hours and another fills it in {} hours. How "
                      "many hours do they take together? Give a fraction in lowest terms if "
                      "needed.",
                      p[0], p[1]),
          fraction(p[0] * p[1], p[0] + p[1])};
}

problem coins(draw& d) {
  const int64_t dimes = d.between(2, 20), quarters = d.between(2, 20);
  return {
    fmt::format("A jar holds {} coins, all dimes and quarters, worth ${}.{:02d} in total. How "
                "many quarters are in the jar?",
                dimes + quarters, (10 * dimes + 25 * quarters) / 100,
                (10 * dimes + 25 * quarters) % 100),
    std::to_string(quarters)};
}

problem squares(draw& d) {
  const int64_t x = d.between(2, 15), b = d.between(1, 30);
  return {
    fmt::format("A positive number squared, plus {}, equals {}. What is the number?", b, x * x + b),
    std::to_string(x)};
}

problem system2(draw& d) {
  const int64_t x = d.between(-6, 12), y = d.between(-6, 12);
  return {fmt::format("If x + y = {} and x - y = {}, what is the value of x * y?", x + y, x - y),
          std::to_string(x * y)};
}

problem interest(draw& d) {
  const int64_t principal = d.between(2, 40) * 100, rate = d.between(2, 9), years = d.between(2, 5);
  return {fmt::format("${} is invested at {}% simple interest per year. How many dollars of "
                      "interest does it earn in {} years?",
                      principal, rate, years),
          fraction(principal * rate * years, 100)};
}

problem angles(draw& d) {
  const int64_t a = d.between(20, 90), b = d.between(20, 160 - a);
  return {fmt::format("Two angles of a triangle measure {} degrees and {} degrees. How many "
                      "degrees is the third angle?",
                      a, b),
          std::to_string(180 - a - b)};
}

problem remainder(draw& d) {
  const int64_t m = d.between(3, 11), q = d.between(5, 40), r = d.between(0, m - 1);
  return {fmt::format("What is the remainder when {} is divided by {}?", m * q + r, m),
          std::to_string(r)};
}

const std::array<maker, 24> makers = {
  shopping,    sharing,  speed,        travel_time,       rectangle_area,  rectangle_side,
  percent_of,  discount, linear,       linear_both_sides, linear_fraction, ages,
  consecutive, average,  fraction_sum, fraction_of,       ratio,           work_rate,
  coins,       squares,  system2,      interest,          angles,          remainder,
};

} // namespace

std::vector<problem> generate_problems(uint64_t seed, int64_t count,
                                       const std::vector<problem>& exclude) {
  PEDAGOGY_CHECK(count >= 0, "negative problem count {}", count);
  std::set<std::string> seen;
  for (const auto& p : exclude)
    seen.insert(p.text);
  draw d(seed);
  std::vector<problem> out;
  // The templates have many distinct instances, but not unboundedly many: when that many draws
  // in a row only repeat problems already drawn, the space is (nearly) used up, and a request for
  // more stops there instead of drawing for ever.
  constexpr int64_t max_repeats_in_a_row = 100'000;
  int64_t repeats = 0;
  while (static_cast<int64_t>(out.size()) < count) {
    problem p = makers[d.next() % makers.size()](d);
    if (!seen.insert(p.text).second) {
      if (++repeats > max_repeats_in_a_row)
        throw input_error("make-problems",
                          fmt::format("only {} distinct problems found ({} draws in a row repeated "
                                      "one), {} asked for",
                                      out.size(), max_repeats_in_a_row, count),
                          fmt::format("ask for at most {} problems", out.size()));
      continue;
    }
    repeats = 0;
    p.line = static_cast<int64_t>(out.size()) + 1;
    out.push_back(std::move(p));
  }
  return out;
}

std::string to_jsonl(const problem& p) {
  return nlohmann::ordered_json{{"problem", p.text}, {"answer", p.answer}}.dump();
}

} // namespace pedagogy::classroom
