// The evaluation's metrics (see eval_metrics.hpp).
#include "classroom/eval_metrics.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <cmath>
#include <map>

namespace pedagogy::classroom {

namespace {

// Mean over problems of per-problem values, with a normal-approximation 95% interval.
metric over_problems(const std::map<int64_t, std::vector<double>>& by_problem) {
  std::vector<double> values;
  for (const auto& [problem, v] : by_problem) {
    if (v.empty())
      continue;
    double sum = 0;
    for (double x : v)
      sum += x;
    values.push_back(sum / static_cast<double>(v.size()));
  }
  metric m;
  m.count = static_cast<int64_t>(values.size());
  if (values.empty())
    return m;
  double sum = 0;
  for (double x : values)
    sum += x;
  m.mean = sum / static_cast<double>(values.size());
  if (values.size() >= 2) {
    double ss = 0;
    for (double x : values)
      ss += (x - m.mean) * (x - m.mean);
    const double n = static_cast<double>(values.size());
    m.ci95 = 1.96 * std::sqrt(ss / (n - 1) / n);
  }
  return m;
}

std::optional<double> reject_rate(const std::vector<bool>& rejects) {
  if (rejects.empty())
    return std::nullopt;
  double r = 0;
  for (bool x : rejects)
    r += x ? 1 : 0;
  return r / static_cast<double>(rejects.size());
}

} // namespace

dialog_eval to_eval(const dialog_record& record, std::optional<double> pre) {
  dialog_eval out;
  out.problem = record.problem_index;
  out.failed = record.status != "ok";
  out.pre = pre;
  out.post = record.reward.solve_rate;
  for (const auto& j : record.judgements) {
    auto* into = j.rule == leak_rule       ? &out.leak_rejects
                 : j.rule == pedagogy_rule ? &out.pedagogy_rejects
                                           : nullptr;
    if (into != nullptr)
      for (const auto& v : j.verdicts)
        into->push_back(v.value == decision::reject);
  }
  return out;
}

eval_summary summarize(const std::vector<dialog_eval>& dialogs) {
  std::map<int64_t, std::vector<double>> pre, post, delta, leaked, pedagogy, macro;
  // Micro: the pooled mean of every scored turn; its interval treats problems as clusters
  // (a ratio estimator: sum of scores over count of turns, per problem).
  std::map<int64_t, std::pair<double, double>> micro; // problem -> (score sum, turns)
  eval_summary s;
  std::map<int64_t, bool> problems;
  for (const auto& d : dialogs) {
    ++s.dialogs;
    problems[d.problem] = true;
    if (d.failed) {
      ++s.failed;
      continue;
    }
    if (d.pre)
      pre[d.problem].push_back(*d.pre);
    if (d.post)
      post[d.problem].push_back(*d.post);
    if (d.pre && d.post)
      delta[d.problem].push_back(*d.post - *d.pre);
    if (auto r = reject_rate(d.leak_rejects))
      leaked[d.problem].push_back(*r);
    if (auto r = reject_rate(d.pedagogy_rejects))
      pedagogy[d.problem].push_back(*r);
    if (d.ped_rm_scored) {
      double sum = 0;
      for (double x : d.ped_rm)
        sum += x;
      macro[d.problem].push_back(d.ped_rm.empty() ? 0.0
                                                  : sum / static_cast<double>(d.ped_rm.size()));
      auto& [scores, turns] = micro[d.problem];
      scores += sum;
      turns += static_cast<double>(d.ped_rm.size());
    }
  }
  s.problems = static_cast<int64_t>(problems.size());
  s.pre = over_problems(pre);
  s.post = over_problems(post);
  s.delta = over_problems(delta);
  s.leaked = over_problems(leaked);
  s.pedagogy_rejects = over_problems(pedagogy);
  s.ped_rm_macro = over_problems(macro);
  double scores = 0, turns = 0;
  int64_t n = 0;
  for (const auto& [problem, st] : micro)
    if (st.second > 0) {
      scores += st.first;
      turns += st.second;
      ++n;
    }
  s.ped_rm_micro.count = n;
  if (turns > 0) {
    const double mean = scores / turns;
    s.ped_rm_micro.mean = mean;
    if (n >= 2) {
      const double nn = static_cast<double>(n), mean_turns = turns / nn;
      double ss = 0;
      for (const auto& [problem, st] : micro)
        if (st.second > 0)
          ss += (st.first - mean * st.second) * (st.first - mean * st.second);
      s.ped_rm_micro.ci95 = 1.96 * std::sqrt(ss / (nn * (nn - 1))) / mean_turns;
    }
  }
  return s;
}

double pass_at_k(int64_t samples, int64_t correct, int64_t k) {
  PEDAGOGY_CHECK(samples >= 1 && k >= 1 && k <= samples && correct >= 0 && correct <= samples,
                 "pass@{} of {} correct out of {}", k, correct, samples);
  if (samples - correct < k)
    return 1.0;
  // C(n-c, k) / C(n, k) as a product, which neither overflows nor loses precision.
  double none = 1.0;
  for (int64_t i = samples - correct + 1; i <= samples; ++i)
    none *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  return 1.0 - none;
}

metric pass_at_k(const std::vector<std::pair<int64_t, int64_t>>& problems, int64_t k) {
  std::map<int64_t, std::vector<double>> by_problem;
  for (size_t i = 0; i < problems.size(); ++i)
    by_problem[static_cast<int64_t>(i)].push_back(
      pass_at_k(problems[i].first, problems[i].second, k));
  return over_problems(by_problem);
}

namespace {

std::string cell(const metric& m, double scale, int decimals) {
  if (m.count == 0)
    return "-";
  return fmt::format("{:.{}f} ± {:.{}f}", m.mean * scale, decimals, m.ci95 * scale, decimals);
}

// A cell may not break the table.
std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text)
    out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
  return out;
}

} // namespace

std::string markdown_table(const std::vector<eval_row>& rows) {
  std::string out = "| tutor | problems | dialogs | failed | pre solve % | post solve % | "
                    "Δ solve % | leaked % | pedagogy rejects % | Ped-RM micro | Ped-RM macro |\n"
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    const auto& s = r.summary;
    out +=
      fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", escaped(r.tutor),
                  s.problems, s.dialogs, s.failed, cell(s.pre, 100, 1), cell(s.post, 100, 1),
                  cell(s.delta, 100, 1), cell(s.leaked, 100, 1), cell(s.pedagogy_rejects, 100, 1),
                  cell(s.ped_rm_micro, 1, 2), cell(s.ped_rm_macro, 1, 2));
  }
  return out;
}

std::string markdown_table(const std::vector<solve_row>& rows) {
  std::string out;
  for (const auto& r : rows) {
    if (out.empty())
      out = fmt::format("| model | problems | failed | pass@1 % | pass@{} % |\n"
                        "|---|---:|---:|---:|---:|\n",
                        r.k);
    out += fmt::format("| {} | {} | {} | {} | {} |\n", escaped(r.tutor), r.problems, r.failed,
                       cell(r.pass1, 100, 1), cell(r.passk, 100, 1));
  }
  return out;
}

} // namespace pedagogy::classroom
