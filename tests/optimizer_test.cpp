// The learner's optimizer: AdamW against LibTorch's own torch::optim::AdamW on the same
// gradients, gradient clipping against its definition, the schedule's shape, and state that
// restores exactly.
#include "models/optimizer.hpp"
#include "runtime/errors.hpp"
#include "torch_doctest.hpp"

#include <torch/optim/adamw.h> // only here, as the reference implementation

#include <cmath>

using namespace pedagogy::models;

namespace {

// A fixed sequence of gradients for a [3, 2] parameter.
at::Tensor gradient(int step) {
  return at::arange(6, at::kFloat).view({3, 2}).sub(2.5).mul(0.3 * (step + 1)).sin();
}

} // namespace

TEST_CASE("AdamW follows torch::optim::AdamW step for step, weight decay included") {
  const at::Tensor start = at::linspace(-1, 1, 6).view({3, 2});
  at::Tensor ours = start.clone().set_requires_grad(true);
  at::Tensor theirs = start.clone().set_requires_grad(true);
  adamw_options o;
  o.weight_decay = 0.1;
  o.beta2 = 0.99;
  adamw opt({{"w", ours}}, o);
  torch::optim::AdamW reference(
    {theirs}, torch::optim::AdamWOptions(0.01).betas({0.9, 0.99}).eps(1e-8).weight_decay(0.1));
  for (int step = 0; step < 5; ++step) {
    ours.mutable_grad() = gradient(step);
    theirs.mutable_grad() = gradient(step);
    opt.step(0.01);
    reference.step();
  }
  CHECK(opt.steps() == 5);
  CHECK((ours - theirs).abs().max().item<double>() < 1e-6);
  CHECK((ours - start).abs().max().item<double>() > 1e-3); // it moved
}

TEST_CASE("saved optimizer state continues exactly, a mismatched state is refused") {
  const at::Tensor start = at::linspace(-1, 1, 6).view({3, 2});
  at::Tensor a = start.clone().set_requires_grad(true);
  adamw straight({{"w", a}}, {});
  for (int step = 0; step < 4; ++step) {
    a.mutable_grad() = gradient(step);
    straight.step(0.05);
  }
  at::Tensor b = start.clone().set_requires_grad(true);
  adamw first({{"w", b}}, {});
  for (int step = 0; step < 2; ++step) {
    b.mutable_grad() = gradient(step);
    first.step(0.05);
  }
  named_tensors saved;
  for (const auto& [name, t] : first.state())
    saved.emplace_back(name, t.clone());
  at::Tensor c = b.detach().clone().set_requires_grad(true);
  adamw resumed({{"w", c}}, {});
  resumed.load_state(saved, first.steps(), "ckpt");
  for (int step = 2; step < 4; ++step) {
    c.mutable_grad() = gradient(step);
    resumed.step(0.05);
  }
  CHECK(at::equal(a, c));
  saved.pop_back();
  CHECK_THROWS_AS(resumed.load_state(saved, 2, "ckpt"), pedagogy::input_error);
}

TEST_CASE("gradient clipping scales the global norm down to max_norm and reports it") {
  at::Tensor x = at::zeros({2}).set_requires_grad(true);
  at::Tensor y = at::zeros({1}).set_requires_grad(true);
  x.mutable_grad() = at::tensor({3.0f, 0.0f});
  y.mutable_grad() = at::tensor({4.0f});
  named_tensors params = {{"x", x}, {"y", y}};
  CHECK(clip_grad_norm(params, 10.0) == doctest::Approx(5.0)); // under the limit: untouched
  CHECK(y.grad()[0].item<double>() == doctest::Approx(4.0));
  CHECK(clip_grad_norm(params, 1.0) == doctest::Approx(5.0));
  CHECK(x.grad()[0].item<double>() == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(y.grad()[0].item<double>() == doctest::Approx(0.8).epsilon(1e-5));
}

TEST_CASE("the schedule: linear warmup, then constant or cosine to zero") {
  CHECK(learning_rate(schedule::constant, 1.0, 4, 0, 100) == doctest::Approx(0.25));
  CHECK(learning_rate(schedule::constant, 1.0, 4, 3, 100) == doctest::Approx(1.0));
  CHECK(learning_rate(schedule::constant, 1.0, 4, 50, 100) == doctest::Approx(1.0));
  CHECK(learning_rate(schedule::cosine, 1.0, 0, 0, 100) == doctest::Approx(1.0));
  CHECK(learning_rate(schedule::cosine, 1.0, 0, 50, 100) == doctest::Approx(0.5));
  CHECK(learning_rate(schedule::cosine, 1.0, 10, 55, 100) == doctest::Approx(0.5));
  CHECK(learning_rate(schedule::cosine, 1.0, 0, 100, 100) == doctest::Approx(0.0));
}
