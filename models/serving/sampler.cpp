// Token sampling (see sampler.hpp).
#include "models/serving/sampler.hpp"

#include "runtime/seeds.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <vector>

namespace pedagogy::models {

namespace {

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

bool truncates(const token_rule& r) {
  return r.top_k > 0 || r.top_p < 1.0;
}

// The temperature that divides the logits (T = 0, greedy, counts as 1).
double divisor(double temperature) {
  return temperature > 0 ? temperature : 1.0;
}

// The divisor every rule shares, if they share one: then a scalar divides the whole batch.
std::optional<double> shared_divisor(const std::vector<token_rule>& rules) {
  const double t = divisor(rules.front().temperature);
  for (const token_rule& r : rules)
    if (divisor(r.temperature) != t)
      return std::nullopt;
  return t;
}

// Picks one of `count` candidates, candidate j being token id(j) with log-prob lp[id(j)], laid
// out in that order: with top_p < 1 only the smallest prefix whose mass reaches top_p (the
// candidate that crosses it is kept), then the draw in [0, 1), scaled to their total mass,
// falls into one candidate's bucket. Masses are summed in double, in candidate order.
template <typename Id>
int64_t pick(const float* lp, Id id, int64_t count, double top_p, double draw) {
  auto mass_of = [&](int64_t j) {
    return std::exp(static_cast<double>(lp[id(j)]));
  };
  if (top_p < 1.0) {
    double mass = 0.0;
    int64_t keep = 0;
    while (keep < count && mass < top_p)
      mass += mass_of(keep++);
    count = std::max<int64_t>(keep, 1);
  }
  double total = 0.0;
  for (int64_t j = 0; j < count; ++j)
    total += mass_of(j);
  double u = draw * total;
  for (int64_t j = 0; j < count; ++j) {
    u -= mass_of(j);
    if (u < 0)
      return id(j);
  }
  return id(count - 1);
}

// Rules of one batch that pick their token the same way, by index into the rules.
struct rule_groups {
  std::vector<int64_t> greedy;    // T = 0: the most likely token
  std::vector<int64_t> plain;     // T > 0, no truncation: every token, in id order
  std::vector<int64_t> truncated; // T > 0 with top-k or top-p: candidates by falling probability
  int64_t longest_k = 0;          // candidates the truncated rows need, at most
  bool rows_in_order = true;      // rule i reads row i of every row there is
};

rule_groups group(const at::Tensor& logits, const std::vector<token_rule>& rules) {
  const int64_t V = logits.size(-1);
  rule_groups groups;
  groups.rows_in_order = static_cast<int64_t>(rules.size()) == logits.size(0);
  for (size_t i = 0; i < rules.size(); ++i) {
    const token_rule& r = rules[i];
    const auto index = static_cast<int64_t>(i);
    groups.rows_in_order = groups.rows_in_order && r.row == index;
    if (r.forced >= 0)
      continue;
    if (r.temperature <= 0) {
      groups.greedy.push_back(index);
    } else if (truncates(r)) {
      groups.truncated.push_back(index);
      groups.longest_k = std::max(groups.longest_k, r.top_k > 0 ? std::min(r.top_k, V) : V);
    } else {
      groups.plain.push_back(index);
    }
  }
  return groups;
}

// The rows `index` [G] of `x`, or x itself when the group is the whole batch of B rows.
at::Tensor rows_of(const at::Tensor& x, const at::Tensor& index, int64_t B) {
  return index.size(0) == B ? x : x.index_select(0, index);
}

// The first position of each row of `cumulative` [B, K] (masses, non-decreasing) whose mass
// exceeds the row's draw u [B]: the bucket the draw falls into. -> [B]
at::Tensor bucket(const at::Tensor& cumulative, const at::Tensor& u) {
  return at::searchsorted(cumulative, u.unsqueeze(1), /*out_int32=*/false, /*right=*/true)
    .squeeze(1);
}

} // namespace

sampling_rng::sampling_rng(uint64_t seed) {
  for (auto& word : s_)
    word = splitmix64(seed);
}

uint64_t sampling_rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double sampling_rng::uniform() {
  return static_cast<double>(next() >> 11) * 0x1.0p-53;
}

float token_logprob(const at::Tensor& logits, int32_t token, double temperature) {
  return at::log_softmax(logits.to(at::kFloat) / divisor(temperature), /*dim=*/-1)[token]
    .item<float>();
}

token_choice sample_token(const at::Tensor& logits, double temperature, int64_t top_k, double top_p,
                          sampling_rng& rng) {
  at::Tensor x = logits.to(at::kCPU, at::kFloat).contiguous();
  if (temperature <= 0) {
    const auto token = static_cast<int32_t>(x.argmax().item<int64_t>());
    return {token, at::log_softmax(x, -1)[token].item<float>()};
  }
  at::Tensor logp = at::log_softmax(x / temperature, -1); // [V], the full distribution
  const float* lp = logp.data_ptr<float>();
  const int64_t V = logp.numel();
  int64_t token = 0;
  if (top_k > 0 || top_p < 1.0) {
    // Candidates in descending probability, the first top_k of them.
    const int64_t k = top_k > 0 ? std::min(top_k, V) : V;
    at::Tensor order = std::get<1>(logp.topk(k, /*dim=*/-1, /*largest=*/true, /*sorted=*/true));
    const int64_t* o = order.data_ptr<int64_t>();
    auto by_rank = [o](int64_t j) {
      return o[j];
    };
    token = pick(lp, by_rank, k, top_p, rng.uniform());
  } else {
    auto by_id = [](int64_t j) {
      return j;
    }; // all tokens in id order
    token = pick(lp, by_id, V, 1.0, rng.uniform());
  }
  return {static_cast<int32_t>(token), lp[token]};
}

token_rule sampling_rule(int64_t row, double temperature, int64_t top_k, double top_p,
                         sampling_rng& rng) {
  token_rule rule;
  rule.row = row;
  rule.temperature = temperature;
  rule.top_k = top_k;
  rule.top_p = top_p;
  if (temperature > 0)
    rule.uniform = rng.uniform();
  return rule;
}

token_rule forced_rule(int64_t row, int32_t token, double temperature) {
  token_rule rule;
  rule.row = row;
  rule.temperature = temperature;
  rule.forced = token;
  return rule;
}

std::vector<token_choice> choose_tokens(const at::Tensor& logits,
                                        const std::vector<token_rule>& rules) {
  if (!logits.device().is_cpu())
    return choose_tokens_on_device(logits, rules);
  const auto B = static_cast<int64_t>(rules.size());
  if (B == 0)
    return {};
  // On the CPU the log-probs are already where the choice is made: one log_softmax for the
  // batch, then each row picks as sample_token() does, reading the batch in place.
  const int64_t V = logits.size(-1);
  const rule_groups groups = group(logits, rules);
  auto rows_in = [B](const at::Tensor& t, const std::vector<int64_t>& rows) { // [G, V]
    return static_cast<int64_t>(rows.size()) == B ? t
                                                  : t.index_select(0, at::tensor(rows, at::kLong));
  };
  at::Tensor x = logits.to(at::kFloat); // [R, V]
  if (!groups.rows_in_order) {
    std::vector<int64_t> rows;
    for (const token_rule& r : rules)
      rows.push_back(r.row);
    x = x.index_select(0, at::tensor(rows, at::kLong)); // [B, V]
  }
  // log_softmax(x / T) [B, V], in one buffer: a second one of that size, fresh every step, costs
  // more than the whole choice on some hosts.
  at::Tensor logp;
  if (const auto t = shared_divisor(rules); t && *t == 1.0) {
    logp = at::log_softmax(x, /*dim=*/-1);
  } else {
    std::vector<float> t_rows;
    if (!t)
      for (const token_rule& r : rules)
        t_rows.push_back(static_cast<float>(divisor(r.temperature)));
    logp = t ? x / *t : x / at::tensor(t_rows, at::kFloat).unsqueeze(1);
    at::log_softmax_out(logp, logp, /*dim=*/-1);
  }
  logp = logp.contiguous();
  at::Tensor best, order; // the greedy rows' argmax [G]; the truncated rows' candidates [Q, K]
  if (!groups.greedy.empty())
    best = rows_in(x, groups.greedy).argmax(/*dim=*/-1).contiguous();
  if (!groups.truncated.empty())
    order = std::get<1>(rows_in(logp, groups.truncated)
                          .topk(groups.longest_k, /*dim=*/-1, /*largest=*/true, /*sorted=*/true))
              .contiguous();

  std::vector<token_choice> choices(static_cast<size_t>(B));
  int64_t greedy = 0, truncated = 0;
  for (int64_t i = 0; i < B; ++i) {
    const token_rule& r = rules[static_cast<size_t>(i)];
    const float* lp = logp.data_ptr<float>() + i * V;
    int64_t token = 0;
    if (r.forced >= 0) {
      token = r.forced;
    } else if (r.temperature <= 0) {
      token = best.data_ptr<int64_t>()[greedy++];
    } else if (truncates(r)) {
      const int64_t* o = order.data_ptr<int64_t>() + (truncated++) * groups.longest_k;
      auto by_rank = [o](int64_t j) {
        return o[j];
      };
      token = pick(lp, by_rank, r.top_k > 0 ? std::min(r.top_k, V) : V, r.top_p, r.uniform);
    } else {
      auto by_id = [](int64_t j) {
        return j;
      };
      token = pick(lp, by_id, V, 1.0, r.uniform);
    }
    choices[static_cast<size_t>(i)] = {static_cast<int32_t>(token), lp[token]};
  }
  return choices;
}

namespace {

// A token rule's numbers as one row of a device tensor.
enum rule_column { row, temperature, top_k, top_p, uniform, forced, columns };

// Plain sampling: every token in id order; the draw, scaled to the total mass, falls into one's
// bucket. r [P, 6] the rules, logp [P, V]. Returns the picks [P].
at::Tensor plain_picks(const at::Tensor& r, const at::Tensor& logp) {
  const int64_t V = logp.size(-1);
  at::Tensor cumulative = logp.to(at::kDouble).exp().cumsum(-1);     // [P, V]
  at::Tensor u = r.select(1, uniform) * cumulative.select(1, V - 1); // [P]
  return bucket(cumulative, u).clamp_max(V - 1);
}

// Top-k and top-p: candidates by falling probability, the first top_k of them, then the smallest
// prefix whose mass reaches top_p (a candidate is kept while the mass ahead of it is below
// top_p). r [Q, 6] the rules, logp [Q, V], K the largest top_k. Returns the picks [Q].
at::Tensor truncated_picks(const at::Tensor& r, const at::Tensor& logp, int64_t K) {
  auto [top, order] = logp.topk(K, /*dim=*/-1, /*largest=*/true, /*sorted=*/true);
  at::Tensor cumulative = top.to(at::kDouble).exp().cumsum(/*dim=*/-1); // [Q, K]
  at::Tensor ahead = at::cat(
    {at::zeros({cumulative.size(0), 1}, cumulative.options()), cumulative.narrow(1, 0, K - 1)},
    /*dim=*/1);                                                           // [Q, K]
  at::Tensor position = at::arange(K, cumulative.options()).unsqueeze(0); // [1, K]
  at::Tensor kept = (position < r.select(1, top_k).unsqueeze(1))
                      .logical_and(ahead < r.select(1, top_p).unsqueeze(1))
                      .sum(/*dim=*/-1);      // [Q], at least 1: nothing is ahead of the first
  at::Tensor last = (kept - 1).unsqueeze(1); // [Q, 1]
  at::Tensor u = r.select(1, uniform) * cumulative.gather(1, last).squeeze(1); // [Q]
  at::Tensor chosen = at::minimum(bucket(cumulative, u), last.squeeze(1));     // [Q]
  return order.gather(1, chosen.unsqueeze(1)).squeeze(1);
}

} // namespace

std::vector<token_choice> choose_tokens_on_device(const at::Tensor& logits,
                                                  const std::vector<token_rule>& rules) {
  const auto B = static_cast<int64_t>(rules.size());
  if (B == 0)
    return {};
  const int64_t V = logits.size(-1);
  const rule_groups groups = group(logits, rules);

  // The rules as columns of numbers, then the rules of each group: one copy to the device.
  std::vector<double> host(static_cast<size_t>(B * columns));
  for (int64_t i = 0; i < B; ++i) {
    const token_rule& r = rules[static_cast<size_t>(i)];
    double* c = &host[static_cast<size_t>(i * columns)];
    c[row] = static_cast<double>(r.row);
    c[temperature] = divisor(r.temperature);
    c[top_k] = static_cast<double>(r.top_k > 0 ? std::min(r.top_k, V) : V);
    c[top_p] = r.top_p < 1.0 ? r.top_p : std::numeric_limits<double>::infinity();
    c[uniform] = r.uniform;
    c[forced] = r.forced >= 0 ? r.forced : 0;
  }
  for (const auto* g : {&groups.greedy, &groups.plain, &groups.truncated})
    for (int64_t i : *g)
      host.push_back(static_cast<double>(i));
  const at::Tensor on_device = at::tensor(host, at::kDouble).to(logits.device());
  const at::Tensor rule = on_device.narrow(0, 0, B * columns).view({B, columns}); // [B, 6]
  int64_t next = B * columns;
  auto index_of = [&](const std::vector<int64_t>& g) { // the group's rules as an index [G]
    const auto G = static_cast<int64_t>(g.size());
    at::Tensor index = G == 0 ? at::Tensor() : on_device.narrow(0, next, G).to(at::kLong);
    next += G;
    return index;
  };
  const at::Tensor greedy_rows = index_of(groups.greedy);
  const at::Tensor plain_rows = index_of(groups.plain);
  const at::Tensor truncated_rows = index_of(groups.truncated);

  at::Tensor x = logits.to(at::kFloat); // [R, V]
  if (!groups.rows_in_order)
    x = x.index_select(0, rule.select(1, row).to(at::kLong)); // [B, V]
  at::Tensor scaled = x;
  if (const auto t = shared_divisor(rules)) {
    if (*t != 1.0)
      scaled = x / *t;
  } else {
    scaled = x / rule.select(1, temperature).to(at::kFloat).unsqueeze(1); // [B, 1]
  }
  const at::Tensor logp = at::log_softmax(scaled, /*dim=*/-1); // [B, V], the full distribution
  at::Tensor token = rule.select(1, forced).to(at::kLong);     // [B]: forced rows are done

  // Each group's picks go into `token`.
  auto place = [&](const at::Tensor& index, const at::Tensor& picks) {
    token = index.size(0) == B ? picks : token.index_copy(0, index, picks);
  };
  if (greedy_rows.defined())
    place(greedy_rows, rows_of(x, greedy_rows, B).argmax(/*dim=*/-1));
  if (plain_rows.defined())
    place(plain_rows, plain_picks(rows_of(rule, plain_rows, B), rows_of(logp, plain_rows, B)));
  if (truncated_rows.defined())
    place(truncated_rows, truncated_picks(rows_of(rule, truncated_rows, B),
                                          rows_of(logp, truncated_rows, B), groups.longest_k));

  const at::Tensor logprob = logp.gather(1, token.unsqueeze(1)).squeeze(1); // [B]
  const at::Tensor both = at::stack({token.to(at::kDouble), logprob.to(at::kDouble)}, /*dim=*/1)
                            .to(at::kCPU); // [B, 2]: the one copy back
  const auto chosen = both.accessor<double, 2>();
  std::vector<token_choice> choices(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i)
    choices[static_cast<size_t>(i)] = {static_cast<int32_t>(chosen[i][0]),
                                       static_cast<float>(chosen[i][1])};
  return choices;
}

} // namespace pedagogy::models
