// The learner on real engine rollouts of a tiny model: an update moves log-probs in the
// direction of the advantages, the behaviour/learner KL is ~0 before it, the micro-batch size
// does not change a token-mean update, the KL term appears once the policy has moved, imitated
// sequences (Pedagogical RL) add alpha x their gated loss and gain log-prob, and the scoring pass
// gives each sequence its learnability.
#include "models/learner/learner.hpp"
#include "models/serving/engine.hpp"
#include "models/tensor/init_model.hpp"
#include "models/text/tokenizer.hpp"
#include "tests/support/torch_doctest.hpp"

#include <cmath>
#include <limits>
#include <map>
#include <random>

using namespace pedagogy::models;

namespace {

const model_config tiny = preset_config(model_family::qwen2, "tiny", 320);

transformer fresh() {
  return transformer::random(tiny, 21, at::kCPU, at::kFloat);
}

// Two sampled two-turn dialogs from the initial weights, advantages +1 and -1.
std::vector<training_sequence> rollouts() {
  static const auto histories = [] {
    auto model = fresh();
    auto tok = tokenizer::from_json(byte_level_tokenizer_json(model_family::qwen2), "byte-level");
    engine e(model, tok, {});
    std::vector<session_history> out;
    for (int d = 0; d < 2; ++d) {
      const std::string name = std::string("d").append(std::to_string(d));
      for (int turn = 0; turn < 2; ++turn) {
        generation_request r;
        r.session = name;
        r.mode = turn == 0 ? session_mode::open : session_mode::resume;
        const std::string text = turn == 0 ? "Teach me 6 x 7." : " Why?";
        r.tokens.assign(text.begin(), text.end());
        r.params.seed = static_cast<uint64_t>(10 * d + turn);
        r.params.max_new_tokens = 10;
        e.submit(r);
        while (e.has_work())
          e.step();
      }
      out.push_back(e.close_session(name));
    }
    return out;
  }();
  return {from_history(histories[0], 1.0), from_history(histories[1], -1.0)};
}

double trained_logprob(const transformer& model, const training_sequence& s) {
  at::NoGradGuard no_grad;
  const auto b = pad({s}, 0, 1, at::kCPU);
  return (sequence_logprobs(model, b, 1.0) * b.mask).sum().item<double>();
}

learner_options options(int64_t micro_batch) {
  learner_options o;
  o.learning_rate = 1e-3;
  o.micro_batch_size = micro_batch;
  o.mu = 2;
  o.max_grad_norm = 0;
  return o;
}

} // namespace

TEST_CASE("an update raises the log-probs of advantaged tokens and lowers the others") {
  const auto batch = rollouts();
  learner l(fresh(), std::nullopt, options(2));
  const double up_before = trained_logprob(l.policy(), batch[0]);
  const double down_before = trained_logprob(l.policy(), batch[1]);
  const auto report = l.learn(batch);
  CHECK(report.sequences == 2);
  CHECK(report.trained_tokens == 40.0);
  CHECK(report.optimizer_steps == 2);
  CHECK(std::abs(report.behaviour_kl) < 1e-5);
  CHECK(report.grad_norm > 0);
  CHECK(report.learning_rate == doctest::Approx(1e-3));
  // The dialogs share most parameters, so one may move with the other; what the update must do
  // is separate them: the advantaged dialog gains on the other.
  const double up_after = trained_logprob(l.policy(), batch[0]);
  const double down_after = trained_logprob(l.policy(), batch[1]);
  MESSAGE("up " << up_before << " -> " << up_after << ", down " << down_before << " -> "
                << down_after);
  CHECK((up_after - down_after) - (up_before - down_before) > 1.0);
}

TEST_CASE("a token-mean update does not depend on the micro-batch size") {
  const auto batch = rollouts();
  // A large Adam epsilon makes the step proportional to the gradient, so what is compared is the
  // accumulated gradient, not Adam's sign-like normalisation of float rounding noise.
  auto o1 = options(1), o2 = options(2);
  o1.adam.eps = o2.adam.eps = 1.0;
  learner one(fresh(), std::nullopt, o1);
  learner two(fresh(), std::nullopt, o2);
  one.learn(batch);
  two.learn(batch);
  const auto initial = fresh();
  double worst = 0, moved = 0;
  for (size_t i = 0; i < one.policy().named_parameters().size(); ++i) {
    const at::Tensor& a = one.policy().named_parameters()[i].second;
    const at::Tensor& b = two.policy().named_parameters()[i].second;
    worst = std::max(worst, (a - b).abs().max().item<double>());
    moved = std::max(moved, (a - initial.named_parameters()[i].second).abs().max().item<double>());
  }
  MESSAGE("largest move " << moved << ", largest difference " << worst);
  CHECK(moved > 1e-5);
  CHECK(worst < 1e-3 * moved);
}

TEST_CASE("with beta > 0 the KL to the frozen reference shows once the policy has moved") {
  const auto batch = rollouts();
  auto o = options(2);
  o.grpo.beta = 0.1;
  learner l(fresh(), fresh(), o);
  const auto first = l.learn(batch); // pass 1 at KL 0, pass 2 after one step
  CHECK(first.kl > 0);
  const auto second = l.learn(batch);
  CHECK(second.kl > first.kl);
  // The reference stayed where it was.
  const auto reference = fresh();
  CHECK(trained_logprob(reference, batch[0]) != trained_logprob(l.policy(), batch[0]));
}

namespace {

// The largest |difference| between two models' parameters.
double largest_difference(const transformer& a, const transformer& b) {
  double worst = 0;
  for (size_t i = 0; i < a.named_parameters().size(); ++i)
    worst = std::max(
      worst,
      (a.named_parameters()[i].second - b.named_parameters()[i].second).abs().max().item<double>());
  return worst;
}

} // namespace

TEST_CASE("a NaN loss stops learning before the weights change") {
  auto batch = rollouts();
  batch[0].advantage = std::nan(""); // as an overflowing KL weight or reward would make it
  learner l(fresh(), std::nullopt, options(2));
  CHECK_THROWS_AS(l.learn(batch), non_finite_error);
  CHECK(largest_difference(l.policy(), fresh()) == 0.0);
  CHECK(l.optimizer().steps() == 0);
}

TEST_CASE("with skip_non_finite a non-finite pass is skipped and reported, weights untouched") {
  auto batch = rollouts();
  batch[1].advantage = std::numeric_limits<double>::infinity();
  auto o = options(2);
  o.skip_non_finite = true;
  learner l(fresh(), std::nullopt, o);
  const auto report = l.learn(batch);
  CHECK(report.skipped_passes == 2);
  CHECK(l.optimizer().steps() == 0);
  CHECK(largest_difference(l.policy(), fresh()) == 0.0);
  // A finite batch afterwards trains as usual: nothing non-finite was left in the optimizer.
  const auto fine = l.learn(rollouts());
  CHECK(fine.skipped_passes == 0);
  CHECK(std::isfinite(fine.loss));
  CHECK(largest_difference(l.policy(), fresh()) > 0.0);
}

TEST_CASE("an imitated sequence gains log-prob, and its loss adds alpha x the gated loss") {
  auto batch = rollouts();
  // Sequence 0 is imitated with weight 0.5, sequence 1 stays a GRPO sequence (advantage -1).
  batch[0].imitation = 0.5;
  auto o = options(2);
  o.mu = 1;
  learner l(fresh(), std::nullopt, o);
  const double before = trained_logprob(l.policy(), batch[0]);

  // The objective by hand: the GRPO part of sequence 1 alone (token mean over its 20 tokens, ratio
  // 1 on-policy: -A per token) plus 0.5 x the gated cross-entropy of sequence 0, over 1 sequence.
  double gated = 0;
  {
    at::NoGradGuard no_grad;
    const auto b = pad({batch[0]}, 0, 1, at::kCPU);
    gated = gated_imitation(sequence_logprobs(l.policy(), b, 1.0), b.mask, o.gate).item<double>();
  }
  const auto report = l.learn(batch);
  CHECK(report.sequences == 2);
  CHECK(report.imitated_sequences == 1);
  CHECK(report.trained_tokens == 20.0); // GRPO tokens only
  CHECK(report.imitated_tokens == 20.0);
  CHECK(report.loss == doctest::Approx(1.0 + 0.5 * gated).epsilon(1e-4));
  CHECK(report.imitation_loss == doctest::Approx(gated).epsilon(1e-4));
  CHECK(report.gate_mean > 0);
  CHECK(report.gate_mean <= 1);
  CHECK(report.gate_min <= report.gate_mean);
  CHECK(std::abs(report.behaviour_kl) < 1e-5);
  CHECK(trained_logprob(l.policy(), batch[0]) > before);
}

TEST_CASE("imitation alone: gated and ungated updates both raise the imitated tokens") {
  auto batch = rollouts();
  for (auto& s : batch)
    s.imitation = 1.0;
  for (bool gating : {true, false}) {
    CAPTURE(gating);
    auto o = options(2);
    o.gate.gating = gating;
    learner l(fresh(), std::nullopt, o);
    const double a = trained_logprob(l.policy(), batch[0]);
    const double b = trained_logprob(l.policy(), batch[1]);
    const auto report = l.learn(batch);
    CHECK(report.trained_tokens == 0.0);
    CHECK(report.imitated_sequences == 2);
    if (!gating)
      CHECK(report.gate_mean == 1.0);
    CHECK(trained_logprob(l.policy(), batch[0]) > a + 1.0);
    CHECK(trained_logprob(l.policy(), batch[1]) > b + 1.0);
  }
}

TEST_CASE(
  "the scoring pass: G of the sampled tokens between 0 and 1, the gap on marked answer tokens") {
  auto batch = rollouts();
  batch[1].answer.assign(batch[1].tokens.size(), 0);
  batch[1].answer.back() = 1;
  learner l(fresh(), std::nullopt, options(1));
  const auto scores = l.score(batch, {});
  REQUIRE(scores.size() == 2);
  for (const auto& s : scores) {
    CHECK(s.tokens == 20.0);
    CHECK(s.g > 0);
    CHECK(s.g <= 1);
    CHECK(s.max_gap >= s.mean_gap);
    CHECK(s.nll > 0);
  }
  CHECK(scores[0].answer_gap == -1.0);
  CHECK(scores[1].answer_gap >= 0.0);
  // Sampled at temperature 1, the tokens are mostly not greedy: G is below 1.
  CHECK(scores[0].g < 1.0);
}

TEST_CASE("memory savers change nothing: chunked log-probs and layer checkpointing") {
  const auto batch = rollouts();
  // The reference: whole logits, activations kept.
  auto plain = options(1);
  plain.logprob_chunk = 0;
  plain.activation_checkpointing = learner_options::checkpointing::off;
  learner a(fresh(), std::nullopt, plain);
  const auto ra = a.learn(batch);
  auto saving = options(1);
  saving.logprob_chunk = 3; // several chunks per sequence
  saving.activation_checkpointing = learner_options::checkpointing::on;
  learner b(fresh(), std::nullopt, saving);
  const auto rb = b.learn(batch);
  // AdamW's update of a near-zero gradient can flip with rounding, so the weights are not
  // compared; the gradients themselves are, in token_logprobs_test.
  CHECK(rb.grad_norm == doctest::Approx(ra.grad_norm).epsilon(1e-5));
  CHECK(rb.loss == doctest::Approx(ra.loss).epsilon(1e-5));
  CHECK(rb.behaviour_kl == doctest::Approx(ra.behaviour_kl).epsilon(1e-3));
  CHECK(ra.optimizer_steps == rb.optimizer_steps);
}

TEST_CASE("old log-probs: recomputed or behaviour give one update in fp32, and only recompute "
          "ignores stale ones") {
  const auto batch = rollouts();
  auto with = [&](bool recompute, float shift) {
    auto o = options(2);
    o.mu = 1;
    o.recompute_old_logprobs = recompute;
    auto shifted = batch;
    for (auto& s : shifted)
      for (auto& lp : s.behaviour_logprobs)
        lp += shift;
    learner l(fresh(), std::nullopt, o);
    return l.learn(shifted);
  };
  // On-policy fp32: the engine's log-probs are the learner's (KL ~1e-8), so the same update.
  const auto behaviour = with(false, 0.0f), recomputed = with(true, 0.0f);
  CHECK(recomputed.loss == doctest::Approx(behaviour.loss).epsilon(1e-5));
  CHECK(recomputed.grad_norm == doctest::Approx(behaviour.grad_norm).epsilon(1e-5));
  CHECK(recomputed.clip_fraction == behaviour.clip_fraction);
  // Behaviour log-probs 0.5 below the learner's (as a bf16 generator's might be off): the ratio
  // starts at e^0.5, outside the clip range, and is clipped; recomputed, it starts at 1.
  const auto stale = with(false, -0.5f), fresh_ratio = with(true, -0.5f);
  CHECK(stale.clip_fraction > 0.4);
  CHECK(fresh_ratio.clip_fraction == 0.0);
  CHECK(fresh_ratio.grad_norm == doctest::Approx(behaviour.grad_norm).epsilon(1e-5));
  // behaviour_kl reports the gap either way.
  CHECK(stale.behaviour_kl == doctest::Approx(-0.5).epsilon(1e-3));
  CHECK(fresh_ratio.behaviour_kl == doctest::Approx(-0.5).epsilon(1e-3));
}

TEST_CASE("a bf16 learner takes the fp32 learner's step: same direction, same size, within 5%") {
  const auto batch = rollouts();
  learner full(fresh(), std::nullopt, options(2));
  auto o = options(2);
  o.dtype = at::kBFloat16;
  learner half(transformer::random(tiny, 21, at::kCPU, at::kBFloat16), std::nullopt, o);
  const auto start16 = half.policy().named_parameters();
  std::vector<at::Tensor> before16;
  for (const auto& [name, p] : start16)
    before16.push_back(p.to(at::kFloat));
  const auto a = full.learn(batch);
  const auto b = half.learn(batch);
  MESSAGE("loss fp32 ", a.loss, " bf16 ", b.loss, "; grad norm fp32 ", a.grad_norm, " bf16 ",
          b.grad_norm);
  CHECK(b.loss == doctest::Approx(a.loss).epsilon(0.05));
  CHECK(b.grad_norm == doctest::Approx(a.grad_norm).epsilon(0.05));
  CHECK(std::abs(b.behaviour_kl) < 0.05); // sampled by the fp32 engine, learned in bf16

  // The update of the bf16 learner's float32 masters against the fp32 learner's update.
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, t] : half.optimizer().state())
    state[name] = t;
  const auto start32 = fresh().named_parameters();
  const auto end32 = full.policy().named_parameters();
  std::vector<at::Tensor> d32, d16;
  double rounding_gap = 0;
  for (size_t i = 0; i < end32.size(); ++i) {
    const auto& master = state.at("master." + end32[i].first);
    d32.push_back((end32[i].second - start32[i].second).flatten());
    d16.push_back((master - before16[i]).flatten());
    rounding_gap =
      std::max(rounding_gap, (half.policy().named_parameters()[i].second.to(at::kFloat) -
                              master.to(at::kBFloat16).to(at::kFloat))
                               .abs()
                               .max()
                               .item<double>());
  }
  const at::Tensor u = at::cat(d32), v = at::cat(d16);
  const double cosine = (u * v).sum().item<double>() / (u.norm() * v.norm()).item<double>();
  const double ratio = v.norm().item<double>() / u.norm().item<double>();
  MESSAGE("update cosine ", cosine, ", norm ratio bf16/fp32 ", ratio);
  CHECK(cosine > 0.95);
  CHECK(ratio == doctest::Approx(1.0).epsilon(0.05));
  CHECK(rounding_gap == 0.0);            // the bf16 weights are the rounded masters
  CHECK(u.norm().item<double>() > 1e-3); // the step did something
}

namespace {

// `count` sequences of `length` random tokens, the second half of each trained, with advantages
// spread over [-1, 1]: micro-batch gradients that partly cancel, as GRPO's signed advantages make
// them.
std::vector<training_sequence> random_batch(int64_t count, int64_t length) {
  std::mt19937_64 random(7);
  std::vector<training_sequence> batch(static_cast<size_t>(count));
  for (auto& s : batch) {
    for (int64_t t = 0; t < length; ++t) {
      s.tokens.push_back(static_cast<int32_t>(random() % 256));
      s.trained.push_back(t >= length / 2 ? 1 : 0);
      s.behaviour_logprobs.push_back(0.0f); // recomputed: the ratio is 1
    }
    s.advantage = static_cast<double>(random() % 2001) / 1000.0 - 1.0;
  }
  return batch;
}

// The gradient one GRPO pass of a bf16 learner accumulates over `batch` in micro-batches of one
// sequence, flattened: with beta1 = 0 the first AdamW step's first moment is that gradient.
at::Tensor accumulated_gradient(const std::vector<training_sequence>& batch) {
  learner_options o;
  o.dtype = at::kBFloat16;
  o.learning_rate = 1e-9;
  o.mu = 1;
  o.max_grad_norm = 0;
  o.adam.beta1 = 0;
  o.recompute_old_logprobs = true;
  o.micro_batch_size = 1;
  learner l(transformer::random(tiny, 21, at::kCPU, at::kBFloat16), std::nullopt, o);
  l.learn(batch);
  std::vector<at::Tensor> parts;
  for (const auto& [name, t] : l.optimizer().state())
    if (name.starts_with("exp_avg."))
      parts.push_back(t.flatten().to(at::kDouble));
  return at::cat(parts);
}

} // namespace

TEST_CASE("a bf16 learner sums the gradients of 32 micro-batches in float32, not in bf16") {
  // The reference: the same 32 bf16 micro-batch gradients summed in float64. A learner given
  // one sequence of the batch computes that sequence's micro-batch gradient times 32, exactly:
  // every sequence has the same trained tokens, so only the token-mean's power-of-two divisor
  // differs, and scaling by a power of two commutes with rounding.
  const int64_t n = 32;
  const auto batch = random_batch(n, 48);
  at::Tensor reference;
  for (const auto& s : batch) {
    const at::Tensor g = accumulated_gradient({s}) / static_cast<double>(n);
    reference = reference.defined() ? reference + g : g;
  }
  const at::Tensor summed = accumulated_gradient(batch);
  const at::Tensor error = (summed - reference).abs();
  const double relative = (error.norm() / reference.norm()).item<double>();
  MESSAGE("the learner's sum of ", n,
          " micro-batch gradients against their float64 sum: "
          "relative error ",
          relative, ", largest element error ", error.max().item<double>(),
          " (largest gradient element ", reference.abs().max().item<double>(), ")");
  // Float32 sums of 32 terms err by ~1e-7 of the sum; bf16 sums by ~1e-3 (8 bits of mantissa).
  CHECK(relative < 1e-5);
}
