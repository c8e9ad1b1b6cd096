// GRPO against hand-computed values: group advantages, clipping on both sides (and its
// gradient), epsilon_high, the k3 KL, the three aggregations and their micro-batch split,
// masking, and a second pass (mu > 1) over the same rollouts.
#include "models/training/grpo.hpp"
#include "tests/support/torch_doctest.hpp"

#include <cmath>

using namespace pedagogy::models;

namespace {

at::Tensor row(std::vector<float> v) {
  return at::tensor(v, at::kFloat).unsqueeze(0);
}

// One token per sequence: logp - old = log(ratio); returns (objective, d objective / d logp).
std::pair<double, double> one_token(double ratio, double advantage, grpo_options o = {}) {
  at::Tensor logp = row({static_cast<float>(std::log(ratio))}).set_requires_grad(true);
  at::Tensor old = row({0.0f});
  auto out = grpo_micro_batch(logp, old, {}, row({1.0f}), at::tensor({advantage}, at::kFloat), o,
                              {1.0, 1, 1});
  out.objective.backward();
  return {out.objective.item<double>(), logp.grad().item<double>()};
}

} // namespace

TEST_CASE("group advantages: centred on the group mean, divided by unbiased std + eps") {
  const auto a = group_advantages({1, 0, 0, 1, 0.5, 0.5}, 2, true, 1e-4);
  const double std = std::sqrt(0.5); // (0.25 + 0.25) / (2 - 1)
  CHECK(a[0] == doctest::Approx(0.5 / (std + 1e-4)));
  CHECK(a[1] == doctest::Approx(-0.5 / (std + 1e-4)));
  CHECK(a[2] == doctest::Approx(-0.5 / (std + 1e-4)));
  CHECK(a[4] == 0.0); // no spread, no signal
  CHECK(a[5] == 0.0);
  const auto unscaled = group_advantages({3, 1, 2, 2}, 4, false, 1e-4);
  CHECK(unscaled[0] == doctest::Approx(1.0));
  CHECK(unscaled[1] == doctest::Approx(-1.0));
}

TEST_CASE("PPO clipping on both sides, and no gradient where the clip is taken") {
  // ratio 1.5, A = +1: min(1.5, 1.2) = 1.2 -> loss -1.2, clipped, no gradient.
  auto [v1, g1] = one_token(1.5, 1.0);
  CHECK(v1 == doctest::Approx(-1.2));
  CHECK(g1 == doctest::Approx(0.0));
  // ratio 1.5, A = -1: min(-1.5, -1.2) = -1.5 -> loss 1.5, gradient d(ratio)/dlogp = 1.5.
  auto [v2, g2] = one_token(1.5, -1.0);
  CHECK(v2 == doctest::Approx(1.5));
  CHECK(g2 == doctest::Approx(1.5));
  // ratio 0.5, A = +1: min(0.5, 0.8) = 0.5 -> loss -0.5, gradient -0.5.
  auto [v3, g3] = one_token(0.5, 1.0);
  CHECK(v3 == doctest::Approx(-0.5));
  CHECK(g3 == doctest::Approx(-0.5));
  // ratio 0.5, A = -1: min(-0.5, -0.8) = -0.8 -> loss 0.8, clipped below, no gradient.
  auto [v4, g4] = one_token(0.5, -1.0);
  CHECK(v4 == doctest::Approx(0.8));
  CHECK(g4 == doctest::Approx(0.0));
  // epsilon_high widens only the upper side: ratio 1.25 is inside [0.8, 1.28].
  grpo_options wide;
  wide.epsilon_high = 0.28;
  CHECK(one_token(1.25, 1.0, wide).first == doctest::Approx(-1.25));
  CHECK(one_token(1.25, 1.0).first == doctest::Approx(-1.2));
  CHECK(one_token(0.7, -1.0, wide).first == doctest::Approx(0.8));
}

TEST_CASE("the k3 KL term: exp(d) - d - 1 with d = ref - logp, weighted by beta") {
  grpo_options o;
  o.beta = 0.1;
  at::Tensor logp = row({-1.0f, -2.0f}).set_requires_grad(true);
  at::Tensor ref = row({-0.5f, -2.0f}); // d = 0.5 and 0
  auto out =
    grpo_micro_batch(logp, logp.detach(), ref, row({1, 1}), at::tensor({0.0f}), o, {2.0, 1, 1});
  const double k3 = std::exp(0.5) - 0.5 - 1.0; // 0.148721
  CHECK(out.stats().kl == doctest::Approx(k3));
  CHECK(out.objective.item<double>() == doctest::Approx(0.1 * k3 / 2.0));
  // d kl / d logp = 1 - exp(d): 1 - e^0.5 on the first token, 0 on the second.
  out.objective.backward();
  CHECK(logp.grad()[0][0].item<double>() == doctest::Approx(0.1 * (1 - std::exp(0.5)) / 2.0));
  CHECK(logp.grad()[0][1].item<double>() == doctest::Approx(0.0));
}

TEST_CASE("aggregations: token mean, sequence mean and the reference's micro-batch mean") {
  // ratio 1 everywhere, so loss_t = -A: sequence 0 (A = 1) has 2 tokens, sequence 1 (A = -2) 1.
  const at::Tensor logp = at::zeros({2, 2});
  const at::Tensor mask = at::tensor({1.0f, 1.0f, 1.0f, 0.0f}).view({2, 2});
  const at::Tensor adv = at::tensor({1.0f, -2.0f});
  auto whole = [&](aggregation reduce) {
    grpo_options o;
    o.reduce = reduce;
    return grpo_micro_batch(logp, logp, {}, mask, adv, o, {3.0, 2, 1}).objective.item<double>();
  };
  // Per-micro-batch (one sequence each), summed as gradient accumulation does.
  auto split = [&](aggregation reduce) {
    grpo_options o;
    o.reduce = reduce;
    double sum = 0;
    for (int64_t b = 0; b < 2; ++b)
      sum += grpo_micro_batch(logp.narrow(0, b, 1), logp.narrow(0, b, 1), {}, mask.narrow(0, b, 1),
                              adv.narrow(0, b, 1), o, {3.0, 2, 2})
               .objective.item<double>();
    return sum;
  };
  CHECK(whole(aggregation::token_mean) == doctest::Approx((-1 - 1 + 2) / 3.0));
  CHECK(whole(aggregation::sequence_mean) == doctest::Approx((-2.0 / 2 + 2.0 / 1) / 2));
  // Token and sequence means do not depend on the micro-batch split...
  CHECK(split(aggregation::token_mean) == doctest::Approx(whole(aggregation::token_mean)));
  CHECK(split(aggregation::sequence_mean) == doctest::Approx(whole(aggregation::sequence_mean)));
  // ...the reference's mean of micro-batch token means does: here it equals the sequence mean.
  CHECK(split(aggregation::micro_batch_token_mean) == doctest::Approx((-2.0 / 2 + 2.0) / 2));
  CHECK(whole(aggregation::micro_batch_token_mean) == doctest::Approx(0.0));
}

TEST_CASE("masked tokens change neither the loss nor get a gradient") {
  at::Tensor logp = row({-1.0f, 5.0f}).set_requires_grad(true); // a wild untrained token
  const at::Tensor old = row({-1.0f, -3.0f});
  auto out = grpo_micro_batch(logp, old, {}, row({1, 0}), at::tensor({1.0f}), {}, {1.0, 1, 1});
  CHECK(out.objective.item<double>() == doctest::Approx(-1.0));
  CHECK(out.stats().tokens == 1.0);
  out.objective.backward();
  CHECK(logp.grad()[0][1].item<double>() == 0.0);
  CHECK(logp.grad()[0][0].item<double>() == doctest::Approx(-1.0));
}

TEST_CASE("mu > 1: the second pass compares with the first pass's log-probs and clips") {
  // Pass 1: the policy equals the behaviour policy, ratio 1, gradient -A per token (mean).
  const at::Tensor old = row({-2.0f, -1.0f});
  at::Tensor first = old.clone().set_requires_grad(true);
  auto p1 = grpo_micro_batch(first, old, {}, row({1, 1}), at::tensor({1.0f}), {}, {2.0, 1, 1});
  p1.objective.backward();
  CHECK(p1.stats().clipped == 0.0);
  CHECK(first.grad()[0][0].item<double>() == doctest::Approx(-0.5));
  // Pass 2 after an update that raised token 0 by 0.5 (ratio e^0.5 = 1.65 > 1.2) and token 1
  // by 0.1 (ratio 1.105): token 0 is clipped and stops pulling, token 1 still learns.
  at::Tensor second = (old + row({0.5f, 0.1f})).set_requires_grad(true);
  auto p2 = grpo_micro_batch(second, old, {}, row({1, 1}), at::tensor({1.0f}), {}, {2.0, 1, 1});
  p2.objective.backward();
  CHECK(p2.stats().clipped == 1.0);
  CHECK(p2.objective.item<double>() == doctest::Approx(-(1.2 + std::exp(0.1)) / 2));
  CHECK(second.grad()[0][0].item<double>() == doctest::Approx(0.0));
  CHECK(second.grad()[0][1].item<double>() == doctest::Approx(-std::exp(0.1) / 2));
}

TEST_CASE("next-token log-probs: log_softmax(logits / T) at the following id") {
  const at::Tensor logits =
    at::tensor({1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 0.0f, 5.0f, 1.0f, 0.0f}).view({1, 3, 3});
  const at::Tensor ids = at::tensor({0, 2, 1}, at::kLong).unsqueeze(0);
  const auto lp = next_token_logprobs(logits, ids, 2.0);
  REQUIRE(lp.size(1) == 2);
  // Position 0 predicts ids[1] = 2 from logits (1, 2, 3) / 2.
  const double z0 = std::exp(0.5) + std::exp(1.0) + std::exp(1.5);
  CHECK(lp[0][0].item<double>() == doctest::Approx(1.5 - std::log(z0)));
  // Position 1 predicts ids[2] = 1 from (0, 0, 0): log(1/3).
  CHECK(lp[0][1].item<double>() == doctest::Approx(std::log(1.0 / 3)));
}

TEST_CASE("log-probs off the mask never reach the loss, even when their ratio overflows") {
  // Row 1 (advantage 0, as an imitated row has) holds a masked token whose behaviour log-prob
  // makes exp(logp - old) overflow: inf x 0 would be NaN.
  at::Tensor logp =
    at::tensor({-0.5f, -0.5f, -0.01f, -0.01f}, at::kFloat).view({2, 2}).set_requires_grad(true);
  const at::Tensor old = at::tensor({-0.5f, -0.5f, -200.0f, -200.0f}, at::kFloat).view({2, 2});
  const at::Tensor ref = at::tensor({-0.5f, -0.5f, -300.0f, -300.0f}, at::kFloat).view({2, 2});
  const at::Tensor mask = at::tensor({1.0f, 1.0f, 0.0f, 0.0f}, at::kFloat).view({2, 2});
  grpo_options o;
  o.beta = 0.1;
  auto out =
    grpo_micro_batch(logp, old, ref, mask, at::tensor({1.0f, 0.0f}, at::kFloat), o, {2.0, 1, 1});
  out.objective.backward();
  CHECK(std::isfinite(out.objective.item<double>()));
  CHECK(out.objective.item<double>() == doctest::Approx(-1.0)); // ratio 1, A = 1, KL 0
  CHECK(at::isfinite(logp.grad()).all().item<bool>());
  CHECK(logp.grad()[1][0].item<double>() == 0.0);
}
