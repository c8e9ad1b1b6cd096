// Pedagogical RL's numerics against hand-computed values: the spike-aware learnability G (all
// greedy, beta -> 0, large beta, a constant added to the logits, an empty mask, one spike vs a
// uniform mild gap, the spec's worked example), the gap from logits without a log-softmax, the
// chunked scoring pass, and the surprisal gate (its values, and its gradient equal to the
// weighted cross-entropy's with the weights held constant).
#include "models/ped/ped.hpp"
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"
#include "models/training/training_batch.hpp"
#include "tests/support/torch_doctest.hpp"

#include <cmath>
#include <limits>

using namespace pedagogy::models;

namespace {

at::Tensor rows(std::vector<std::vector<float>> v) {
  std::vector<at::Tensor> out;
  for (auto& r : v)
    out.push_back(at::tensor(r, at::kFloat));
  return at::stack(out);
}

double item(const at::Tensor& t, int64_t i = 0) {
  return t[i].item<double>();
}

} // namespace

TEST_CASE("G is 1 for a trajectory of greedy tokens and below 1 once one token is not") {
  // Logits of three positions over a vocabulary of four; ids are the next tokens.
  // The last position predicts nothing that is scored.
  const at::Tensor logits =
    rows({{0, 3, 1, 0}, {2, 0, 0, 1}, {0, 0, 5, 0}, {0, 0, 0, 0}}).unsqueeze(0);
  const at::Tensor greedy = at::tensor({0, 1, 0, 2}, at::kLong).unsqueeze(0);
  const auto g = next_token_gaps(logits, greedy, 1.0);
  const at::Tensor mask = at::ones({1, 3});
  CHECK(item(learnability(g.gap, mask, {})) == 1.0);
  const at::Tensor other = at::tensor({0, 1, 3, 2}, at::kLong).unsqueeze(0);
  const auto h = next_token_gaps(logits, other, 1.0);
  CHECK(h.gap[0][1].item<double>() == doctest::Approx(1.0)); // 2 - 1
  CHECK(item(learnability(h.gap, mask, {})) < 1.0);
}

TEST_CASE("the gap is max logit minus the sampled one, and log p matches a log-softmax") {
  at::manual_seed(3);
  const at::Tensor logits = at::randn({2, 5, 11});
  const at::Tensor ids = at::randint(0, 11, {2, 5}, at::kLong);
  for (double temperature : {1.0, 0.7}) {
    CAPTURE(temperature);
    const auto g = next_token_gaps(logits, ids, temperature);
    const at::Tensor lsm = at::log_softmax(logits.narrow(1, 0, 4) / temperature, 2);
    const at::Tensor want_logp = lsm.gather(2, ids.narrow(1, 1, 4).unsqueeze(2)).squeeze(2);
    const at::Tensor want_gap = std::get<0>(lsm.max(2)) - want_logp;
    CHECK(at::allclose(g.logp, want_logp, 1e-5, 1e-6));
    CHECK(at::allclose(g.gap, want_gap, 1e-5, 1e-6));
  }
}

TEST_CASE("adding a constant to the logits changes neither the gaps nor G") {
  at::manual_seed(4);
  const at::Tensor logits = at::randn({3, 6, 9});
  const at::Tensor ids = at::randint(0, 9, {3, 6}, at::kLong);
  const at::Tensor mask = at::ones({3, 5});
  const auto a = next_token_gaps(logits, ids, 1.0);
  const auto b = next_token_gaps(logits + 37.5, ids, 1.0);
  CHECK(at::allclose(a.gap, b.gap, 1e-4, 1e-5));
  CHECK(at::allclose(learnability(a.gap, mask, {}), learnability(b.gap, mask, {}), 1e-5, 1e-6));
}

TEST_CASE("beta -> 0 gives exp(-lambda mean d) and a large beta approaches exp(-lambda max d)") {
  const at::Tensor d = rows({{0.2f, 10.0f, 0.2f}});
  const at::Tensor mask = at::ones({1, 3});
  spike_options o;
  o.lambda = 0.5;
  const double mean = (0.2 + 10.0 + 0.2) / 3;
  o.beta = 0;
  CHECK(item(learnability(d, mask, o)) == doctest::Approx(std::exp(-0.5 * mean)));
  o.beta = 1e-4;
  CHECK(item(learnability(d, mask, o)) == doctest::Approx(std::exp(-0.5 * mean)).epsilon(1e-3));
  // beta = 5 by hand: (1/5) log((2 e^1 + e^50) / 3) = 10 - ln(3)/5 (to 1e-20).
  o.beta = 5;
  CHECK(item(soft_max_gap(d, mask, 5)) == doctest::Approx(10 - std::log(3.0) / 5));
  o.beta = 500;
  const double g_large = item(learnability(d, mask, o));
  CHECK(g_large == doctest::Approx(std::exp(-0.5 * 10.0)).epsilon(2e-3));
  CHECK(g_large > std::exp(-0.5 * 10.0)); // the soft maximum stays below the max
}

TEST_CASE("padding outside the mask counts for nothing, and an empty mask scores G = 0") {
  const at::Tensor d = rows({{0.2f, 10.0f, 0.2f, 99.0f}, {5.0f, 5.0f, 5.0f, 5.0f}});
  const at::Tensor mask = rows({{1, 1, 1, 0}, {0, 0, 0, 0}});
  const at::Tensor soft = soft_max_gap(d, mask, 5);
  CHECK(item(soft, 0) == doctest::Approx(10 - std::log(3.0) / 5));
  CHECK(item(soft, 1) == 0.0);
  const at::Tensor g = learnability(d, mask, {});
  CHECK(item(g, 1) == 0.0);
  CHECK(std::isfinite(item(g, 0)));
}

TEST_CASE("one spike scores below a uniformly mild trajectory (the verl unit test)") {
  // Log-probs [-0.2, -10, -0.2] vs [-0.5, -0.5, -0.5] with the top token at -0.1 everywhere.
  const at::Tensor spike = rows({{0.1f, 9.9f, 0.1f}});
  const at::Tensor mild = rows({{0.4f, 0.4f, 0.4f}});
  const at::Tensor mask = at::ones({1, 3});
  spike_options o; // beta 5, lambda 0.5
  const double g_spike = item(learnability(spike, mask, o));
  const double g_mild = item(learnability(mild, mask, o));
  CHECK(g_spike < g_mild);
  CHECK(g_mild == doctest::Approx(std::exp(-0.5 * 0.4)));
}

TEST_CASE("the spec's worked example: T = 300, one 10-nat spike is vetoed, a mild gap is not") {
  at::Tensor a = at::zeros({1, 300});
  a[0][150] = 10.0;
  const at::Tensor b = at::full({1, 300}, 0.3);
  const at::Tensor mask = at::ones({1, 300});
  spike_options o; // beta 5, lambda 0.5
  const double soft = item(soft_max_gap(a, mask, 5));
  // (1/5) log((299 + e^50) / 300) = 10 - ln(300)/5 + tiny
  CHECK(soft == doctest::Approx(10 - std::log(300.0) / 5));
  CHECK(item(learnability(a, mask, o)) == doctest::Approx(std::exp(-0.5 * soft)));
  CHECK(item(learnability(a, mask, o)) < 0.013);
  CHECK(item(learnability(b, mask, o)) == doctest::Approx(std::exp(-0.15)));
  o.beta = 0;
  CHECK(item(learnability(a, mask, o)) == doctest::Approx(std::exp(-0.5 * 10.0 / 300)));
}

TEST_CASE("max_gap clips each token's gap before the soft maximum") {
  const at::Tensor d = rows({{0.0f, 10.0f}});
  const at::Tensor logp = rows({{0.0f, -10.0f}});
  spike_options o;
  o.max_gap = 2.0;
  const auto s = summarise_scores({d, logp}, at::ones({1, 2}), {}, o);
  CHECK(s[0].max_gap == doctest::Approx(2.0));
  CHECK(s[0].soft_max_gap == doctest::Approx(std::log((1 + std::exp(10.0)) / 2) / 5));
  CHECK(s[0].nll == doctest::Approx(5.0)); // the clip is on the gap, not on the log-prob
}

TEST_CASE("summaries: mean, max, NLL, token count and the gap on the answer's tokens") {
  const at::Tensor d = rows({{1.0f, 3.0f, 0.0f, 8.0f}});
  const at::Tensor logp = rows({{-1.0f, -2.0f, -0.5f, -9.0f}});
  const at::Tensor mask = rows({{1, 1, 1, 0}});
  const at::Tensor answer = rows({{0, 1, 1, 1}});
  spike_options o;
  o.beta = 0;
  o.lambda = 1;
  const auto s = summarise_scores({d, logp}, mask, answer, o);
  REQUIRE(s.size() == 1);
  CHECK(s[0].tokens == 3);
  CHECK(s[0].mean_gap == doctest::Approx(4.0 / 3));
  CHECK(s[0].max_gap == doctest::Approx(3.0));
  CHECK(s[0].g == doctest::Approx(std::exp(-4.0 / 3)));
  CHECK(s[0].nll == doctest::Approx(3.5 / 3));
  CHECK(s[0].answer_gap == doctest::Approx(1.5)); // the masked-out last token is no answer token
  CHECK(s[0].answer_max_gap == doctest::Approx(3.0));
  CHECK(summarise_scores({d, logp}, mask, {}, o)[0].answer_gap == -1.0);
}

TEST_CASE("the chunked scoring pass equals the gaps of one full forward") {
  const auto config = preset_config(model_family::qwen2, "tiny", 320);
  const auto model = transformer::random(config, 7, at::kCPU, at::kFloat);
  training_sequence a, b;
  for (int i = 0; i < 13; ++i)
    a.tokens.push_back(40 + 7 * i % 200);
  for (int i = 0; i < 6; ++i)
    b.tokens.push_back(90 + 11 * i % 200);
  for (auto* s : {&a, &b}) {
    s->trained.assign(s->tokens.size(), 1);
    s->behaviour_logprobs.assign(s->tokens.size(), 0.0f);
  }
  const auto batch = pad({a, b}, 0, 2, at::kCPU);
  at::NoGradGuard no_grad;
  const auto full = next_token_gaps(model.forward(batch.ids, batch.attention), batch.ids, 1.0);
  for (int64_t chunk : {1, 5, 100}) {
    CAPTURE(chunk);
    const auto scored = score_tokens(model, batch, 1.0, chunk);
    CHECK(at::allclose(scored.gap * batch.mask, full.gap * batch.mask, 1e-5, 1e-5));
    CHECK(at::allclose(scored.logp * batch.mask, full.logp * batch.mask, 1e-5, 1e-5));
  }
}

TEST_CASE("the gate: w = sigmoid(kappa (log p - gamma)) on the mask, 1 without gating") {
  const at::Tensor logp = rows({{-3.5f, -0.1f, -12.0f}});
  const at::Tensor mask = rows({{1, 1, 0}});
  const gate_options o; // kappa 2, gamma -3.5
  const at::Tensor w = imitation_weights(logp, mask, o);
  CHECK(item(w[0], 0) == doctest::Approx(0.5));
  CHECK(item(w[0], 1) == doctest::Approx(1 / (1 + std::exp(-2 * 3.4))));
  CHECK(item(w[0], 2) == 0.0);
  gate_options off;
  off.gating = false;
  CHECK(at::equal(imitation_weights(logp, mask, off), mask));
  const double w0 = 0.5, w1 = 1 / (1 + std::exp(-6.8));
  CHECK(item(gated_imitation(logp, mask, o)) == doctest::Approx((w0 * 3.5 + w1 * 0.1) / (w0 + w1)));
  CHECK(item(gated_imitation(logp, at::zeros({1, 3}), o)) == 0.0);
}

TEST_CASE("the gate's gradient equals the weighted cross-entropy's with w held constant") {
  at::manual_seed(9);
  const at::Tensor start = -at::rand({2, 6}) * 8;
  const at::Tensor mask = rows({{1, 1, 1, 1, 0, 0}, {0, 1, 1, 1, 1, 1}});
  const gate_options o;
  at::Tensor logp = start.clone().set_requires_grad(true);
  gated_imitation(logp, mask, o).sum().backward();

  const at::Tensor w = at::sigmoid(o.kappa * (start - o.gamma)) * mask; // a constant
  at::Tensor plain = start.clone().set_requires_grad(true);
  ((w * -plain).sum(1) / w.sum(1)).sum().backward();
  CHECK(at::allclose(logp.grad(), plain.grad(), 1e-6, 1e-7));
  // Differentiating through the gate would give other values: the test can tell them apart.
  at::Tensor through = start.clone().set_requires_grad(true);
  const at::Tensor w_live = at::sigmoid(o.kappa * (through - o.gamma)) * mask;
  ((w_live * -through).sum(1) / w_live.sum(1)).sum().backward();
  CHECK_FALSE(at::allclose(through.grad(), plain.grad(), 1e-3, 1e-4));
}

TEST_CASE("a token whose log-prob underflowed to -inf weighs nothing and makes no NaN") {
  at::Tensor logp =
    rows({{-0.2f, -std::numeric_limits<float>::infinity()}}).set_requires_grad(true);
  const at::Tensor mask = at::ones({1, 2});
  const at::Tensor loss = gated_imitation(logp, mask, {});
  loss.sum().backward();
  CHECK(loss.item<double>() == doctest::Approx(0.2));
  CHECK(at::isfinite(logp.grad()).all().item<bool>());
}
