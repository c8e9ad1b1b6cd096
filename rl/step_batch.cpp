// Dialogs -> GRPO groups -> training sequences and the step's means (see step_batch.hpp).
#include "rl/step_batch.hpp"

#include "models/training/grpo.hpp"
#include "models/training/training_batch.hpp"
#include "runtime/errors.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace pedagogy::actors {

namespace {

struct mean_of {
  double sum = 0;
  int64_t n = 0;
  void add(double x) {
    sum += x;
    ++n;
  }
  double value() const {
    return n ? sum / static_cast<double>(n) : 0.0;
  }
};

} // namespace

step_batch make_step_batch(const std::vector<dialog_result>& results,
                           const group_options& options) {
  PEDAGOGY_CHECK(options.group_size >= 1, "group size {}", options.group_size);
  step_batch out;
  auto& s = out.stats;
  s.dialogs = static_cast<int64_t>(results.size());
  mean_of reward, end, thinking, end_marker, length, solve_rate, turns, tutor_tokens, rejected;
  std::map<std::string, mean_of> rule_rejects;
  std::vector<double> advantages;
  mean_of flat;
  for (const auto& r : results)
    s.generated_tokens += r.record.tutor_tokens + r.record.student_tokens + r.record.judge_tokens +
                          r.record.solution_tokens;
  const auto g = static_cast<size_t>(options.group_size);
  for (size_t group = 0; group < results.size(); group += g) {
    std::vector<double> rewards;
    std::vector<size_t> members;
    for (size_t i = group; i < std::min(group + g, results.size()); ++i) {
      const auto& r = results[i].record;
      if (r.status != "ok" || results[i].tutor.tokens.empty()) {
        ++s.failed;
        continue;
      }
      rewards.push_back(r.reward.total);
      members.push_back(i);
      reward.add(r.reward.total);
      end.add(r.reward.end);
      thinking.add(r.reward.thinking);
      end_marker.add(r.reward.end_marker);
      length.add(r.reward.length);
      if (r.reward.solve_rate)
        solve_rate.add(*r.reward.solve_rate);
      turns.add(static_cast<double>(r.tutor_turns));
      tutor_tokens.add(static_cast<double>(r.tutor_tokens));
      rejected.add(r.rejected ? 1.0 : 0.0);
      for (const auto& rule : options.judge_rules) {
        double hit = 0;
        for (const auto& j : r.judgements)
          hit = std::max(hit, j.rule == rule && j.rejected() ? 1.0 : 0.0);
        rule_rejects[rule].add(hit);
      }
    }
    if (rewards.empty())
      continue;
    flat.add(
      std::all_of(rewards.begin(), rewards.end(), [&](double x) { return x == rewards.front(); })
        ? 1.0
        : 0.0);
    const auto adv = models::group_advantages(rewards, static_cast<int64_t>(rewards.size()),
                                              options.scale_rewards, options.std_eps);
    for (size_t k = 0; k < members.size(); ++k) {
      out.batch.sequences.push_back(models::from_history(results[members[k]].tutor, adv[k]));
      advantages.push_back(adv[k]);
    }
  }
  s.reward = reward.value();
  s.reward_end = end.value();
  s.reward_thinking = thinking.value();
  s.reward_end_marker = end_marker.value();
  s.reward_length = length.value();
  s.solve_rate = solve_rate.value();
  s.rejected = rejected.value();
  s.tutor_turns = turns.value();
  s.tutor_tokens = tutor_tokens.value();
  s.flat_groups = flat.value();
  for (const auto& [rule, m] : rule_rejects)
    s.reject_rate_by_rule[rule] = m.value();
  if (!advantages.empty()) {
    s.advantage_min = *std::min_element(advantages.begin(), advantages.end());
    s.advantage_max = *std::max_element(advantages.begin(), advantages.end());
    double sum = 0, squares = 0;
    for (double a : advantages)
      sum += a;
    s.advantage_mean = sum / static_cast<double>(advantages.size());
    for (double a : advantages)
      squares += (a - s.advantage_mean) * (a - s.advantage_mean);
    if (advantages.size() > 1)
      s.advantage_std = std::sqrt(squares / static_cast<double>(advantages.size() - 1));
  }
  return out;
}

std::vector<size_t> learner_share(const std::vector<models::training_sequence>& batch,
                                  int64_t learners, int64_t index) {
  const size_t n = batch.size();
  const auto parts = static_cast<size_t>(std::max<int64_t>(learners, 1));
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return batch[a].tokens.size() > batch[b].tokens.size();
  });
  std::vector<size_t> capacity(parts, n / parts);
  for (size_t i = 0; i < n % parts; ++i)
    ++capacity[i];
  std::vector<size_t> tokens(parts, 0), owner(n, 0);
  for (size_t i : order) {
    size_t best = parts;
    for (size_t r = 0; r < parts; ++r)
      if (capacity[r] > 0 && (best == parts || tokens[r] < tokens[best]))
        best = r;
    owner[i] = best;
    tokens[best] += batch[i].tokens.size();
    --capacity[best];
  }
  std::vector<size_t> mine;
  for (size_t i = 0; i < n; ++i)
    if (owner[i] == static_cast<size_t>(index))
      mine.push_back(i);
  return mine;
}

} // namespace pedagogy::actors
