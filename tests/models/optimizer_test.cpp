// The learner's optimizer: AdamW against LibTorch's own torch::optim::AdamW on the same
// gradients, gradient clipping against its definition, the schedule's shape, state that
// restores exactly, and the float32 gradient buffers of bf16 parameters.
#include "models/tensor/init_model.hpp"
#include "models/training/checkpoint_files.hpp"
#include "models/training/main_grads.hpp"
#include "models/training/optimizer.hpp"
#include "runtime/errors.hpp"
#include "tests/support/torch_doctest.hpp"

#include <fmt/format.h>
#include <torch/optim/adamw.h> // only here, as the reference implementation
#include <unistd.h>

#include <cmath>
#include <filesystem>

using namespace pedagogy::models;

namespace {

// A fixed sequence of gradients for a [3, 2] parameter.
at::Tensor gradient(int step) {
  return at::arange(6, at::kFloat).view({3, 2}).sub(2.5).mul(0.3 * (step + 1)).sin();
}

// Named parameters of several shapes: a shard of them has something to own.
named_tensors parameters(at::ScalarType dtype = at::kFloat) {
  named_tensors out;
  const std::vector<std::vector<int64_t>> shapes{{8, 4}, {4}, {6, 6}, {3, 2}, {10}, {5, 3}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto n = static_cast<double>(i + 1);
    out.emplace_back(fmt::format("p{}", i), at::linspace(-n, n, c10::multiply_integers(shapes[i]))
                                              .view(shapes[i])
                                              .to(dtype)
                                              .set_requires_grad(true));
  }
  return out;
}

// A gradient per parameter and step, exactly representable in bf16 (multiples of 1/64 below 4).
void give_gradients(named_tensors& ps, int step) {
  for (size_t i = 0; i < ps.size(); ++i) {
    auto& p = ps[i].second;
    const auto n = p.numel();
    ps[i].second.mutable_grad() = at::arange(n, at::kFloat)
                                    .add(static_cast<double>(3 * step + static_cast<int>(i)))
                                    .mul(0.7)
                                    .sin()
                                    .mul(64)
                                    .round()
                                    .div(64)
                                    .view(p.sizes())
                                    .to(p.scalar_type());
  }
}

double max_gap(const named_tensors& a, const named_tensors& b) {
  double gap = 0;
  for (size_t i = 0; i < a.size(); ++i)
    gap = std::max(
      gap, (a[i].second.to(at::kFloat) - b[i].second.to(at::kFloat)).abs().max().item<double>());
  return gap;
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

TEST_CASE("bf16 parameters keep float32 masters: the weights are the rounded masters") {
  // The same gradients (exact in bf16) into a float32 and a bf16 copy of the same parameters.
  auto full = parameters(at::kFloat);
  auto half = parameters(at::kBFloat16);
  adamw_options o;
  o.weight_decay = 0.01;
  adamw a(full, o), b(half, o);
  for (int step = 0; step < 6; ++step) {
    give_gradients(full, step);
    give_gradients(half, step);
    a.step(0.01);
    b.step(0.01);
  }
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, t] : b.state())
    state[name] = t;
  REQUIRE(state.size() == 3 * full.size()); // moments and a master each
  double master_gap = 0, rounding_gap = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    const auto& master = state.at("master." + full[i].first);
    CHECK((master.scalar_type() == at::kFloat));
    // The masters start from the bf16-rounded weights: the float32 run's path, within its start.
    master_gap = std::max(master_gap, (master - full[i].second).abs().max().item<double>());
    rounding_gap = std::max(
      rounding_gap,
      (half[i].second - master.to(at::kBFloat16)).to(at::kFloat).abs().max().item<double>());
  }
  MESSAGE("max |master - fp32 weights| = ", master_gap);
  CHECK(master_gap < 0.02); // bf16 rounding of the start (|w| <= 6: spacing 1/32) stays put
  CHECK(rounding_gap == 0.0);

  // Updates below bf16's spacing accumulate in the master and show once they add up: 300 steps
  // of ~1e-4 at |w| = 1 (spacing 2^-7) move the weight ~0.03; rounded bf16 updates would not.
  at::Tensor w = at::ones({4}, at::kBFloat16).set_requires_grad(true);
  adamw tiny_steps({{"w", w}}, {});
  for (int step = 0; step < 300; ++step) {
    w.mutable_grad() = at::ones({4}, at::kBFloat16);
    tiny_steps.step(1e-4);
  }
  CHECK(w.to(at::kFloat).max().item<double>() < 0.98);
}

TEST_CASE(
  "a bf16 parameter's gradients add up in its float32 buffer, which bf16 would round away") {
  // 1 and then 256 x 2^-9: in bf16 each 2^-9 is below half the spacing at 1 (2^-7) and is lost.
  at::Tensor w = at::zeros({4}, at::kBFloat16).set_requires_grad(true);
  at::Tensor unused = at::zeros({2}, at::kBFloat16).set_requires_grad(true);
  at::Tensor bias = at::zeros({2}, at::kFloat).set_requires_grad(true);
  const int steps = 256;
  double expected = 1.0;
  {
    main_grads grads({{"w", w}, {"unused", unused}, {"bias", bias}});
    CHECK(grads.bytes() == 6 * 4);
    (w.sum() + bias.sum()).backward();
    for (int i = 0; i < steps; ++i) {
      (w.sum() * std::ldexp(1.0, -9)).backward();
      expected += std::ldexp(1.0, -9);
    }
    CHECK_FALSE(w.grad().defined()); // added into the buffer and freed
    const auto arrived = grads.arrived();
    REQUIRE(arrived[0].defined());
    CHECK(at::toString(arrived[0].scalar_type()) == std::string("Float"));
    CHECK(arrived[0].max().item<double>() == expected);
    CHECK(arrived[0].min().item<double>() == expected);
    CHECK_FALSE(arrived[1].defined());             // no backward reached it: the optimizer skips it
    CHECK(arrived[2].sum().item<double>() == 2.0); // a float32 parameter keeps its own .grad
    CHECK(grads.all()[1].abs().sum().item<double>() == 0.0);
    grads.zero();
    CHECK(grads.arrived()[0].defined() == false);
    CHECK_FALSE(bias.grad().defined());
  }
  // Without the buffer (its hooks gone with it), autograd sums in bf16 and loses the small ones.
  w.sum().backward();
  for (int i = 0; i < steps; ++i)
    (w.sum() * std::ldexp(1.0, -9)).backward();
  MESSAGE("1 + 256 x 2^-9 = ", expected, "; summed in bf16: ", w.grad()[0].item<double>());
  CHECK(w.grad()[0].item<double>() == 1.0);
}

TEST_CASE("ZeRO-1 shards: every parameter has one owner, shards balance, and together they "
          "take the unsharded step") {
  auto whole = parameters();
  const auto owners = shard_owners(whole, 3);
  std::vector<int64_t> load(3, 0);
  for (size_t i = 0; i < whole.size(); ++i) {
    REQUIRE(owners[i] >= 0);
    REQUIRE(owners[i] < 3);
    load[static_cast<size_t>(owners[i])] += whole[i].second.numel();
  }
  // 32 + 4 + 36 + 6 + 10 + 15 = 103 elements: the largest first to the lightest rank.
  CHECK(*std::max_element(load.begin(), load.end()) <= 36);
  CHECK(*std::min_element(load.begin(), load.end()) >= 32);
  CHECK(shard_owners(whole, 3) == owners); // the same deal every time

  adamw_options o;
  o.weight_decay = 0.1;
  adamw one(whole, o);
  std::vector<named_tensors> copies;
  std::vector<std::unique_ptr<adamw>> shards;
  for (int64_t r = 0; r < 3; ++r) {
    copies.push_back(parameters());
    std::vector<uint8_t> owned;
    for (int64_t owner : owners)
      owned.push_back(owner == r ? 1 : 0);
    shards.push_back(std::make_unique<adamw>(copies.back(), o, owned));
    CHECK(shards.back()->state().size() ==
          2 * static_cast<size_t>(std::count(owned.begin(), owned.end(), 1)));
  }
  for (int step = 0; step < 3; ++step) {
    give_gradients(whole, step);
    one.step(0.05);
    for (size_t r = 0; r < 3; ++r) {
      give_gradients(copies[r], step);
      shards[r]->step(0.05);
    }
    // The broadcast from the owners, by hand: each parameter from the copy that updated it.
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < whole.size(); ++i)
      for (size_t r = 0; r < 3; ++r)
        if (static_cast<int64_t>(r) != owners[i])
          copies[r][i].second.copy_(copies[static_cast<size_t>(owners[i])][i].second);
  }
  for (size_t r = 0; r < 3; ++r)
    CHECK(max_gap(copies[r], whole) == 0.0);
  CHECK(max_gap(whole, parameters()) > 0.01); // it moved
}

TEST_CASE("sharded optimizer checkpoints resume on another number of learners") {
  const auto dir = std::filesystem::temp_directory_path() /
                   fmt::format("pedagogy-optimizer-shards-{}", ::getpid());
  std::filesystem::remove_all(dir);
  const auto model =
    transformer::random(preset_config(model_family::qwen2, "tiny", 320), 3, at::kCPU, at::kFloat);
  auto trained = [](const transformer& m) {
    named_tensors ps;
    for (const auto& [name, p] : m.named_parameters())
      ps.emplace_back(name, p.detach().clone().set_requires_grad(true));
    return ps;
  };
  auto step_all = [](named_tensors& ps, adamw& opt) {
    for (auto& [name, p] : ps)
      p.mutable_grad() = at::ones_like(p).mul(0.01).add(p.detach().sin());
    opt.step(0.01);
  };
  // Two learners, each stepping its shard (the broadcast does not matter to the state).
  auto base = trained(model);
  const auto owners = shard_owners(base, 2);
  for (int64_t r = 0; r < 2; ++r) {
    auto ps = trained(model);
    std::vector<uint8_t> owned;
    for (int64_t owner : owners)
      owned.push_back(owner == r ? 1 : 0);
    adamw opt(ps, {}, owned);
    step_all(ps, opt);
    save_training_checkpoint(dir, model, opt, dir / "no-tokenizer", {r, 2});
  }
  CHECK(std::filesystem::exists(dir / "optimizer.shard-1.safetensors"));
  CHECK(optimizer_files(dir, "").size() == 2);

  // One learner resumes with every parameter's moments, from both files.
  auto ps = trained(model);
  adamw one(ps, {});
  load_optimizer_state(one, dir, "");
  CHECK(one.steps() == 1);
  auto reference = trained(model);
  adamw fresh_one(reference, {});
  step_all(reference, fresh_one);
  const auto loaded = one.state(), expected = fresh_one.state();
  REQUIRE(loaded.size() == expected.size());
  CHECK(max_gap(loaded, expected) == 0.0);

  // A missing shard is named.
  std::filesystem::remove(dir / "optimizer.shard-1.safetensors");
  try {
    optimizer_files(dir, "");
    FAIL("a missing shard was not noticed");
  } catch (const pedagogy::input_error& e) {
    CHECK(std::string(e.what()).find("optimizer.shard-1.safetensors") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}
