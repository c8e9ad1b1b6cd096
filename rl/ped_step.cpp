// Pedagogical RL inside a training step (see ped_step.hpp).
#include "rl/ped_step.hpp"

#include "classroom/rule_judge.hpp"
#include "models/training/grpo.hpp"
#include "models/training/training_batch.hpp"
#include "runtime/errors.hpp"

#include <algorithm>
#include <map>
#include <numeric>

namespace pedagogy::actors {

namespace {

bool finished(const dialog_result& r) {
  return r.record.status == "ok" && !r.tutor.tokens.empty();
}

bool leaks(const dialog_result& r) {
  return classroom::leaking_turn(r.record.messages, r.record.answer) > 0;
}

} // namespace

bool succeeded(const dialog_result& r) {
  return finished(r) && !r.record.rejected && r.record.reward.solve_rate.value_or(0.0) > 0.0;
}

std::vector<int64_t> failed_problems(const std::vector<dialog_result>& results,
                                     int64_t group_size) {
  PEDAGOGY_CHECK(group_size >= 1, "group size {}", group_size);
  std::vector<int64_t> out;
  const auto g = static_cast<size_t>(group_size);
  for (size_t start = 0; start < results.size(); start += g) {
    const auto end = std::min(results.size(), start + g);
    if (std::none_of(results.begin() + static_cast<std::ptrdiff_t>(start),
                     results.begin() + static_cast<std::ptrdiff_t>(end), succeeded))
      out.push_back(results[start].record.problem_index);
  }
  return out;
}

std::vector<models::training_sequence> learner_views(const std::vector<dialog_result>& teacher) {
  std::vector<models::training_sequence> out;
  out.reserve(teacher.size());
  for (const auto& r : teacher) {
    if (!finished(r) || r.learner_view.tokens.empty()) {
      out.emplace_back();
      continue;
    }
    auto s = models::from_history(r.learner_view, 0.0);
    s.answer = r.answer_tokens;
    if (s.answer.size() != s.tokens.size())
      s.answer.clear();
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<double> ped_rewards(const std::vector<dialog_result>& teacher,
                                const std::vector<models::ped_score>& scores,
                                const config::ped_config& ped) {
  PEDAGOGY_CHECK(scores.size() == teacher.size(), "{} scores for {} trajectories", scores.size(),
                 teacher.size());
  std::vector<double> out(teacher.size(), 0.0);
  for (size_t i = 0; i < teacher.size(); ++i) {
    const double r = teacher[i].record.reward.total;
    out[i] = ped.reward == config::ped_reward_form::product
               ? std::max(r, 0.0) * scores[i].g
               : r - ped.additive_lambda * scores[i].nll;
  }
  return out;
}

rollout_batch teacher_batch(const std::vector<dialog_result>& teacher,
                            const std::vector<double>& rewards, int64_t group_size,
                            bool scale_rewards, double std_eps) {
  PEDAGOGY_CHECK(rewards.size() == teacher.size() && group_size >= 1, "bad teacher batch");
  rollout_batch out;
  const auto g = static_cast<size_t>(group_size);
  for (size_t start = 0; start < teacher.size(); start += g) {
    std::vector<double> group;
    std::vector<size_t> members;
    for (size_t i = start; i < std::min(teacher.size(), start + g); ++i)
      if (finished(teacher[i])) {
        group.push_back(rewards[i]);
        members.push_back(i);
      }
    if (group.empty())
      continue;
    const auto adv =
      models::group_advantages(group, static_cast<int64_t>(group.size()), scale_rewards, std_eps);
    for (size_t k = 0; k < members.size(); ++k)
      out.sequences.push_back(models::from_history(teacher[members[k]].tutor, adv[k]));
  }
  return out;
}

std::vector<models::training_sequence> select_corpus(const std::vector<dialog_result>& teacher,
                                                     const std::vector<models::ped_score>& scores,
                                                     const config::ped_config& ped, double weight,
                                                     ped_stats& stats) {
  PEDAGOGY_CHECK(scores.size() == teacher.size(), "{} scores for {} trajectories", scores.size(),
                 teacher.size());
  const bool tutor = ped.policy == config::ped_policy::tutor;
  std::map<int64_t, std::vector<size_t>> kept; // by problem, in result order
  std::map<int64_t, bool> asked;
  for (size_t i = 0; i < teacher.size(); ++i) {
    const auto& r = teacher[i];
    asked[r.record.problem_index] = true;
    if (!succeeded(r) || r.record.reward.total <= 0 || r.learner_view.tokens.empty())
      continue;
    if (tutor && ped.leak_filter && leaks(r))
      continue;
    if (scores[i].g < ped.min_g)
      continue;
    kept[r.record.problem_index].push_back(i);
  }
  std::vector<models::training_sequence> out;
  double g_sum = 0;
  for (auto& [problem, members] : kept) {
    // The highest G first; equal G keeps result order, so the choice is reproducible.
    std::stable_sort(members.begin(), members.end(),
                     [&](size_t a, size_t b) { return scores[a].g > scores[b].g; });
    size_t take = members.size();
    if (ped.select == config::corpus_select::best_g)
      take = 1;
    else if (ped.select == config::corpus_select::top_k)
      take = std::min(take, static_cast<size_t>(ped.top_k));
    for (size_t k = 0; k < take; ++k) {
      const auto& r = teacher[members[k]];
      auto s = models::from_history(r.learner_view, 0.0);
      s.imitation = weight;
      if (r.answer_tokens.size() == s.tokens.size())
        s.answer = r.answer_tokens;
      out.push_back(std::move(s));
      g_sum += scores[members[k]].g;
    }
  }
  stats.corpus_kept = static_cast<int64_t>(out.size());
  stats.corpus_coverage =
    asked.empty() ? 0.0 : static_cast<double>(kept.size()) / static_cast<double>(asked.size());
  stats.corpus_g = out.empty() ? 0.0 : g_sum / static_cast<double>(out.size());
  return out;
}

void describe_teacher(const std::vector<dialog_result>& teacher,
                      const std::vector<models::ped_score>& scores,
                      const std::vector<double>& rewards, const config::ped_config& ped,
                      ped_stats& stats) {
  PEDAGOGY_CHECK(scores.size() == teacher.size() && rewards.size() == teacher.size(),
                 "{} scores and {} rewards for {} trajectories", scores.size(), rewards.size(),
                 teacher.size());
  stats.teacher_dialogs = static_cast<int64_t>(teacher.size());
  double n = 0, r = 0, success = 0, g = 0, r_ped = 0, gap = 0, gap_max = 0, leak = 0;
  double answered = 0, answer_gap = 0, successes = 0, backfill = 0;
  for (size_t i = 0; i < teacher.size(); ++i) {
    const auto& t = teacher[i];
    if (!finished(t))
      continue;
    const auto& s = scores[i];
    n += 1;
    r += t.record.reward.total;
    g += s.g;
    r_ped += rewards[i];
    gap += s.mean_gap;
    gap_max += s.max_gap;
    if (ped.policy == config::ped_policy::tutor && leaks(t))
      leak += 1;
    if (s.answer_gap >= 0) {
      answered += 1;
      answer_gap += s.answer_gap;
    }
    if (succeeded(t)) {
      success += 1;
      successes += 1;
      if (s.answer_max_gap >= 0 && s.max_gap > 0 && s.answer_max_gap >= s.max_gap)
        backfill += 1;
    }
  }
  const double d = std::max(n, 1.0);
  stats.teacher_reward = r / d;
  stats.teacher_success = success / d;
  stats.g = g / d;
  stats.r_ped = r_ped / d;
  stats.gap_mean = gap / d;
  stats.gap_max = gap_max / d;
  stats.leak_rate = leak / d;
  stats.answer_gap = answered > 0 ? answer_gap / answered : 0.0;
  stats.backfill_rate = successes > 0 ? backfill / successes : 0.0;
}

} // namespace pedagogy::actors
