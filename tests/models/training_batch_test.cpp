// Training sequences from the tutor's session history: the mask is where the engine sampled,
// and the learner's recomputed log-probs equal the engine's behaviour log-probs for the same
// weights (their KL is ~0 in fp32 on CPU), with padding and temperature handled alike.
#include "models/serving/engine.hpp"
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"
#include "models/text/tokenizer.hpp"
#include "models/training/training_batch.hpp"
#include "tests/support/torch_doctest.hpp"

#include <cmath>

using namespace pedagogy::models;

namespace {

struct fixture {
  tokenizer tok =
    tokenizer::from_json(byte_level_tokenizer_json(model_family::qwen2), "byte-level");
  transformer model =
    transformer::random(preset_config(model_family::qwen2, "tiny", 320), 5, at::kCPU, at::kFloat);
};

std::vector<int32_t> text_ids(const std::string& text) {
  return {text.begin(), text.end()}; // byte-level: one id per byte of ASCII text
}

// A two-turn session: prompt, sampled reply, a user turn, a sampled reply.
session_history two_turns(fixture& f, const std::string& name, double temperature, uint64_t seed) {
  engine e(f.model, f.tok, {});
  generation_request r;
  r.session = name;
  r.mode = session_mode::open;
  r.tokens = text_ids("You are a tutor. Problem: 6 x 7?");
  r.params.temperature = temperature;
  r.params.seed = seed;
  r.params.max_new_tokens = 12;
  e.submit(r);
  while (e.has_work())
    e.step();
  r.mode = session_mode::resume;
  r.tokens = text_ids(" Student: is it 40?");
  r.params.seed = seed + 100;
  e.submit(r);
  while (e.has_work())
    e.step();
  return e.close_session(name);
}

} // namespace

TEST_CASE("the loss mask is exactly the sampled tokens, behaviour log-probs come along") {
  fixture f;
  const auto h = two_turns(f, "d", 1.0, 1);
  const auto s = from_history(h, 0.5);
  int64_t sampled = 0;
  for (auto x : s.trained)
    sampled += x;
  CHECK(sampled == 24); // two replies of 12
  CHECK(s.trained.front() == 0);
  const auto b = pad({s}, 0, 1, at::kCPU);
  CHECK(b.trained_tokens == 24.0);
  CHECK(b.mask.sum().item<double>() == 24.0);
  // The prompt and the student's turn are context only.
  const auto prompt = text_ids("You are a tutor. Problem: 6 x 7?").size();
  CHECK(b.mask.narrow(1, 0, static_cast<int64_t>(prompt) - 1).sum().item<double>() == 0.0);
  CHECK(b.advantages[0].item<double>() == doctest::Approx(0.5));
}

TEST_CASE("the learner's log-probs equal the engine's behaviour log-probs (fp32, CPU)") {
  fixture f;
  for (double temperature : {1.0, 0.7}) {
    CAPTURE(temperature);
    std::vector<training_sequence> seqs = {from_history(two_turns(f, "a", temperature, 3), 1.0),
                                           from_history(two_turns(f, "b", temperature, 9), -1.0)};
    REQUIRE(seqs[0].tokens != seqs[1].tokens); // different samples, different lengths
    // Together (right-padded) and each alone.
    const auto both = pad(seqs, 0, 2, at::kCPU);
    at::NoGradGuard no_grad;
    const at::Tensor lp = sequence_logprobs(f.model, both, temperature);
    const at::Tensor diff = (lp - both.behaviour) * both.mask;
    const double max_abs = diff.abs().max().item<double>();
    // Mean of behaviour - learner over trained tokens: the KL estimate logged every step.
    const double mean_kl = -diff.sum().item<double>() / both.trained_tokens;
    MESSAGE("max |logp diff| " << max_abs << ", mean KL " << mean_kl);
    CHECK(max_abs < 1e-4);
    CHECK(std::abs(mean_kl) < 1e-5);
    for (size_t i = 0; i < 2; ++i) {
      const auto alone = pad(seqs, i, i + 1, at::kCPU);
      const at::Tensor one = sequence_logprobs(f.model, alone, temperature);
      const auto width = one.size(1);
      CHECK(((one - lp[static_cast<int64_t>(i)].narrow(0, 0, width).unsqueeze(0)) * alone.mask)
              .abs()
              .max()
              .item<double>() < 1e-5);
    }
  }
}

TEST_CASE("different weights give a measurable difference (the check above can fail)") {
  fixture f;
  const auto s = from_history(two_turns(f, "c", 1.0, 4), 1.0);
  const auto b = pad({s}, 0, 1, at::kCPU);
  auto other =
    transformer::random(preset_config(model_family::qwen2, "tiny", 320), 6, at::kCPU, at::kFloat);
  at::NoGradGuard no_grad;
  const at::Tensor lp = sequence_logprobs(other, b, 1.0);
  CHECK(((lp - b.behaviour) * b.mask).abs().max().item<double>() > 1e-2);
}
