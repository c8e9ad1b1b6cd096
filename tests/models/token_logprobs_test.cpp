// The learner's memory savers: chunked log-probs of sampled tokens give the same values and
// gradients as the whole log_softmax(h W^T / T) path (every chunk size, tied or not, through the
// model), and checkpointed decoder layers give the same gradients as kept activations.
#include "models/tensor/init_model.hpp"
#include "models/tensor/token_logprobs.hpp"
#include "models/tensor/transformer.hpp"
#include "models/training/grpo.hpp"
#include "models/training/training_batch.hpp"
#include "tests/support/torch_doctest.hpp"

#include <ATen/CPUGeneratorImpl.h>

using namespace pedagogy::models;

namespace {

struct problem {
  at::Tensor hidden, weight, targets, upstream;
};

problem random_problem(int64_t N, int64_t C, int64_t V, uint64_t seed) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(seed);
  return {at::randn({N, C}, g, at::kFloat), at::randn({V, C}, g, at::kFloat) * 0.5,
          at::randint(V, {N}, g, at::kLong), at::randn({N}, g, at::kFloat)};
}

// The whole computation, as the learner did before chunking.
at::Tensor whole(const at::Tensor& h, const at::Tensor& w, const at::Tensor& targets, double t) {
  return at::log_softmax(at::linear(h, w).to(at::kFloat) / t, 1)
    .gather(1, targets.unsqueeze(1))
    .squeeze(1);
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// Two copies of one random model, both trainable.
std::pair<transformer, transformer> twins(model_family family, uint64_t seed) {
  const auto config = preset_config(family, "tiny", 320);
  auto a = transformer::random(config, seed, at::kCPU, at::kFloat);
  auto b = transformer::random(config, seed, at::kCPU, at::kFloat);
  for (auto* m : {&a, &b})
    for (const auto& [name, p] : m->named_parameters())
      at::Tensor(p).set_requires_grad(true);
  return {std::move(a), std::move(b)};
}

// Two sequences of different lengths, every token trained.
padded_batch two_sequences(std::vector<int32_t> first, std::vector<int32_t> second) {
  std::vector<training_sequence> seqs(2);
  seqs[0].tokens = std::move(first);
  seqs[1].tokens = std::move(second);
  for (auto& s : seqs) {
    s.trained.assign(s.tokens.size(), 1);
    s.behaviour_logprobs.assign(s.tokens.size(), 0.0f);
  }
  return pad(seqs, 0, 2, at::kCPU);
}

void check_same_gradients(const transformer& a, const transformer& b, double tolerance) {
  const auto& pa = a.named_parameters();
  const auto& pb = b.named_parameters();
  for (size_t i = 0; i < pa.size(); ++i) {
    const std::string name = pa[i].first;
    CAPTURE(name);
    REQUIRE(pa[i].second.grad().defined());
    REQUIRE(pb[i].second.grad().defined());
    CHECK(max_diff(pa[i].second.grad(), pb[i].second.grad()) < tolerance);
  }
}

} // namespace

TEST_CASE("chunked log-probs and their gradients equal the whole computation") {
  const auto p = random_problem(37, 16, 50, 3);
  for (double t : {1.0, 0.7}) {
    for (int64_t chunk : {1, 5, 36, 37, 1024}) {
      CAPTURE(t);
      CAPTURE(chunk);
      const auto h1 = p.hidden.clone().requires_grad_(true);
      const auto w1 = p.weight.clone().requires_grad_(true);
      const auto h2 = p.hidden.clone().requires_grad_(true);
      const auto w2 = p.weight.clone().requires_grad_(true);
      const auto chunked = token_logprobs(h1, w1, p.targets, t, chunk);
      const auto reference = whole(h2, w2, p.targets, t);
      CHECK(max_diff(chunked, reference) < 1e-5);
      (chunked * p.upstream).sum().backward();
      (reference * p.upstream).sum().backward();
      CHECK(max_diff(h1.grad(), h2.grad()) < 1e-5);
      CHECK(max_diff(w1.grad(), w2.grad()) < 1e-5);
    }
  }
}

TEST_CASE("without gradients the chunks only compute values, and T = 0 counts as 1") {
  const auto p = random_problem(9, 8, 20, 4);
  at::NoGradGuard no_grad;
  CHECK(max_diff(token_logprobs(p.hidden, p.weight, p.targets, 0.0, 4),
                 whole(p.hidden, p.weight, p.targets, 1.0)) < 1e-6);
}

TEST_CASE("bf16 weights: the chunked path stays with the whole one") {
  const auto p = random_problem(24, 16, 40, 5);
  const auto h = p.hidden.to(at::kBFloat16), w = p.weight.to(at::kBFloat16);
  const auto chunked = token_logprobs(h, w, p.targets, 1.0, 7);
  CHECK((chunked.scalar_type() == at::kFloat));
  CHECK(max_diff(chunked, whole(h, w, p.targets, 1.0)) < 1e-2);
}

TEST_CASE("sequence log-probs through a tied model equal the whole logits path, gradients too") {
  REQUIRE(preset_config(model_family::qwen2, "tiny", 320).tie_word_embeddings); // the head's
  // gradient reaches the embedding as well
  auto [a, b] = twins(model_family::qwen2, 7);
  const auto batch = two_sequences({1, 5, 9, 13, 2, 7, 30, 31}, {4, 8, 15, 16, 23});
  const auto chunked = sequence_logprobs(a, batch, 0.9, /*chunk=*/3);
  const auto full = next_token_logprobs(b.forward(batch.ids, batch.attention), batch.ids, 0.9);
  CHECK(max_diff(chunked * batch.mask, full * batch.mask) < 1e-5);
  (chunked * batch.mask).sum().backward();
  (full * batch.mask).sum().backward();
  check_same_gradients(a, b, 1e-5);
}

TEST_CASE("checkpointed layers give the gradients of kept activations, and only when training") {
  auto [a, b] = twins(model_family::llama, 9);
  b.set_activation_checkpointing(true);
  const auto batch = two_sequences({3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, {2, 7, 1, 8, 2, 8});
  const auto la = sequence_logprobs(a, batch, 1.0);
  const auto lb = sequence_logprobs(b, batch, 1.0);
  CHECK(max_diff(la * batch.mask, lb * batch.mask) < 1e-6);
  (la * batch.mask).sum().backward();
  (lb * batch.mask).sum().backward();
  check_same_gradients(a, b, 1e-6);
  // Without gradients (generation, the reference model) nothing is checkpointed or recorded.
  at::NoGradGuard no_grad;
  CHECK(max_diff(sequence_logprobs(b, batch, 1.0) * batch.mask, la.detach() * batch.mask) < 1e-6);
}
