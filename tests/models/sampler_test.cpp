// The sampler: top-k and top-p stay in their set with the right frequencies, and batched token
// choice (on the host and as device ops) equals the one-row sampler.
#include "models/serving/sampler.hpp"
#include "tests/support/torch_doctest.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

using namespace pedagogy::models;

TEST_CASE("top-k and top-p never leave their set, and frequencies match the distribution") {
  at::Tensor logits = at::tensor({2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -3.0f});
  sampling_rng rng(7);
  for (int i = 0; i < 2000; ++i)
    CHECK(sample_token(logits, 1.0, 2, 1.0, rng).token < 2); // top-2: tokens 0 and 1

  // T = 0.7 and top_p = 0.9: the smallest set of most likely tokens with mass >= 0.9.
  const double T = 0.7;
  at::Tensor p = at::softmax(logits.to(at::kDouble) / T, 0);
  std::vector<double> probs(p.data_ptr<double>(), p.data_ptr<double>() + 6);
  std::vector<double> target(6, 0.0);
  double mass = 0;
  for (int k = 0; k < 6 && mass < 0.9; ++k) {
    target[k] = probs[k];
    mass += probs[k];
  }
  for (auto& t : target)
    t /= mass;
  const int draws = 40000;
  std::vector<int> counts(6, 0);
  for (int i = 0; i < draws; ++i) {
    auto choice = sample_token(logits, T, 0, 0.9, rng);
    ++counts[choice.token];
    CHECK(target[choice.token] > 0); // never outside the nucleus
    // The log-prob is of the full temperature-scaled distribution, not the truncated one.
    CHECK(choice.logprob == doctest::Approx(std::log(probs[choice.token])).epsilon(1e-5));
  }
  // Tolerance 0.01 absolute: over 5 standard deviations of a frequency at 40000 draws.
  for (int k = 0; k < 6; ++k) {
    CAPTURE(k);
    CHECK(std::abs(counts[k] / static_cast<double>(draws) - target[k]) < 0.01);
  }
}

TEST_CASE("batched token choice, on the host and as device ops, equals the one-row sampler") {
  // Random logits, flat to peaked, and rules of every kind in one batch: greedy, forced, plain
  // temperature, top-k (also k >= V), top-p, both; several rules on one row (a fork) and rows out
  // of order. Each rule's generator is copied, so both paths see the same draw; batches of a
  // single kind take the paths that skip the gather. Random float32 logits have no ties, so the
  // tokens must be the same; bf16 ones have many. Log-probs agree to 1e-6.
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(11);
  const double temperatures[] = {0.0, 0.3, 0.7, 1.0, 1.6};
  const int64_t top_ks[] = {0, 1, 5, 40, 1000};
  const double top_ps[] = {1.0, 0.5, 0.9, 0.99};
  enum class kind { mixed, greedy, plain, truncated };
  int rules_checked = 0;
  for (int64_t V : {61, 700}) {
    for (kind only : {kind::mixed, kind::greedy, kind::plain, kind::truncated}) {
      for (auto dtype : {at::kFloat, at::kBFloat16}) {
        const int64_t R = 48;
        at::Tensor scale = at::rand({R, 1}, g) * 8.0; // [R, 1]: flat to peaked rows
        at::Tensor logits = (at::randn({R, V}, g) * scale).to(dtype);
        std::vector<token_rule> rules;
        std::vector<token_choice> expected;
        for (int64_t i = 0; i < 2 * R; ++i) {
          const auto pick = [&](int64_t n) {
            return at::randint(n, {1}, g).item<int64_t>();
          };
          const int64_t row = i < R ? (i * 7) % R : pick(R);
          double T = temperatures[pick(5)];
          int64_t k = top_ks[pick(5)];
          double p = top_ps[pick(4)];
          const bool forced = only == kind::mixed && pick(6) == 0;
          if (only == kind::greedy)
            T = 0.0;
          if (only != kind::greedy && T == 0.0 && only != kind::mixed)
            T = 0.8;
          if (only == kind::plain)
            k = 0, p = 1.0;
          if (only == kind::truncated && k == 0 && p == 1.0)
            p = 0.9;
          sampling_rng rng(static_cast<uint64_t>(1000 * V + i));
          sampling_rng reference = rng;
          at::Tensor x = logits[row];
          if (forced) {
            const auto token = static_cast<int32_t>(pick(V));
            rules.push_back(forced_rule(row, token, T));
            expected.push_back({token, token_logprob(x, token, T)});
          } else {
            rules.push_back(sampling_rule(row, T, k, p, rng));
            expected.push_back(sample_token(x, T, k, p, reference));
          }
          CHECK(rng.next() == reference.next()); // the same draws were taken
        }
        for (bool on_device : {false, true}) {
          CAPTURE(on_device);
          const auto chosen =
            on_device ? choose_tokens_on_device(logits, rules) : choose_tokens(logits, rules);
          REQUIRE(chosen.size() == rules.size());
          int mismatches = 0;
          for (size_t i = 0; i < rules.size(); ++i) {
            // bf16 rows have many equal logits, and the order of equal candidates is arbitrary:
            // another token with the very same logit is the same choice.
            const at::Tensor x = logits[rules[i].row];
            const bool tie = dtype == at::kBFloat16 &&
                             x[chosen[i].token].item<float>() == x[expected[i].token].item<float>();
            const bool same = (chosen[i].token == expected[i].token || tie) &&
                              std::abs(chosen[i].logprob - expected[i].logprob) <= 1e-6;
            if (!same && ++mismatches <= 5) {
              CAPTURE(V);
              CAPTURE(i);
              CAPTURE(rules[i].row);
              CAPTURE(rules[i].temperature);
              CAPTURE(rules[i].top_k);
              CAPTURE(rules[i].top_p);
              CAPTURE(rules[i].forced);
              CHECK(chosen[i].token == expected[i].token);
              CHECK(chosen[i].logprob == doctest::Approx(expected[i].logprob).epsilon(0));
            }
            ++rules_checked;
          }
          CHECK(mismatches == 0);
        }
      }
    }
  }
  CHECK(rules_checked == 2 * 4 * 2 * 2 * 96);
}
