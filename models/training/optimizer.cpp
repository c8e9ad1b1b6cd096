// AdamW, gradient clipping and the schedule (see optimizer.hpp).
#include "models/training/optimizer.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <numeric>

namespace pedagogy::models {

adamw::adamw(named_tensors parameters, adamw_options options, std::vector<uint8_t> owned)
  : parameters_(std::move(parameters)), owned_(std::move(owned)), options_(options) {
  if (owned_.empty())
    owned_.assign(parameters_.size(), 1);
  PEDAGOGY_CHECK(owned_.size() == parameters_.size(), "{} ownership flags for {} parameters",
                 owned_.size(), parameters_.size());
  at::NoGradGuard no_grad;
  exp_avg_.resize(parameters_.size());
  exp_avg_sq_.resize(parameters_.size());
  master_.resize(parameters_.size());
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const auto& [name, p] = parameters_[i];
    PEDAGOGY_CHECK(p.requires_grad(), "parameter {} does not require gradients", name);
    if (!owns(i))
      continue;
    const auto fp32 = p.options().dtype(at::kFloat);
    exp_avg_[i] = at::zeros_like(p, fp32);
    exp_avg_sq_[i] = at::zeros_like(p, fp32);
    if (p.scalar_type() != at::kFloat)
      master_[i] = p.detach().to(fp32, /*non_blocking=*/false, /*copy=*/true);
  }
}

namespace {

std::vector<at::Tensor> grads_of(const named_tensors& parameters) {
  std::vector<at::Tensor> grads;
  for (const auto& [name, p] : parameters)
    grads.push_back(p.grad());
  return grads;
}

} // namespace

void adamw::step(double lr) {
  step(lr, grads_of(parameters_));
}

void adamw::step(double lr, const std::vector<at::Tensor>& grads) {
  PEDAGOGY_CHECK(grads.size() == parameters_.size(), "{} gradients for {} parameters", grads.size(),
                 parameters_.size());
  at::NoGradGuard no_grad;
  ++steps_;
  const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double bias2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
  // The owned parameters with a gradient, as float32 lists for the foreach kernels.
  std::vector<at::Tensor> weights, g, m, v;
  std::vector<size_t> rounded; // parameters whose float32 master is rounded back into them
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const at::Tensor& p = parameters_[i].second;
    if (!owns(i) || !grads[i].defined())
      continue;
    weights.push_back(master_[i].defined() ? master_[i] : p);
    g.push_back(grads[i].to(at::kFloat));
    m.push_back(exp_avg_[i]);
    v.push_back(exp_avg_sq_[i]);
    if (master_[i].defined())
      rounded.push_back(i);
  }
  if (weights.empty())
    return;
  // torch.optim.AdamW's order: decay, moments, then the update with bias corrections.
  if (options_.weight_decay != 0.0)
    at::_foreach_mul_(weights, 1.0 - lr * options_.weight_decay);
  at::_foreach_mul_(m, options_.beta1);
  at::_foreach_add_(m, g, 1.0 - options_.beta1);
  at::_foreach_mul_(v, options_.beta2);
  at::_foreach_addcmul_(v, g, g, 1.0 - options_.beta2);
  auto denom = at::_foreach_sqrt(v);
  at::_foreach_div_(denom, std::sqrt(bias2));
  at::_foreach_add_(denom, options_.eps);
  at::_foreach_addcdiv_(weights, m, denom, -lr / bias1);
  for (size_t i : rounded)
    parameters_[i].second.copy_(master_[i]);
}

void adamw::zero_grad() {
  for (auto& [name, p] : parameters_)
    if (p.grad().defined())
      p.mutable_grad() = at::Tensor();
}

named_tensors adamw::state() const {
  named_tensors out;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!owns(i))
      continue;
    out.emplace_back("exp_avg." + parameters_[i].first, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + parameters_[i].first, exp_avg_sq_[i]);
    if (master_[i].defined())
      out.emplace_back("master." + parameters_[i].first, master_[i]);
  }
  return out;
}

int64_t adamw::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& [name, t] : state())
    bytes += t.numel() * static_cast<int64_t>(t.element_size());
  return bytes;
}

void adamw::load_state(const named_tensors& state, int64_t steps, const std::string& where) {
  std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!owns(i))
      continue;
    for (auto [prefix, target] :
         {std::pair{"exp_avg.", &exp_avg_[i]}, std::pair{"exp_avg_sq.", &exp_avg_sq_[i]}}) {
      const std::string name = prefix + parameters_[i].first;
      auto it = by_name.find(name);
      if (it == by_name.end() || it->second.sizes() != target->sizes())
        throw input_error(where, fmt::format("optimizer state '{}' is missing or misshapen", name),
                          "the checkpoint belongs to another model");
      target->copy_(it->second);
    }
  }
  for (size_t i = 0; i < parameters_.size(); ++i) {
    // The float32 weights of a mixed-precision run, where the checkpoint has them.
    at::Tensor& p = parameters_[i].second;
    if (!owns(i) && p.scalar_type() != at::kFloat)
      continue; // its master is another learner's
    auto master = by_name.find("master." + parameters_[i].first);
    if (master == by_name.end())
      continue;
    if (master->second.sizes() != p.sizes())
      throw input_error(
        where, fmt::format("optimizer state 'master.{}' is misshapen", parameters_[i].first),
        "the checkpoint belongs to another model");
    if (master_[i].defined()) {
      master_[i].copy_(master->second);
      p.copy_(master_[i]);
    } else {
      p.copy_(master->second);
    }
  }
  steps_ = steps;
}

std::vector<int64_t> shard_owners(const named_tensors& parameters, int64_t ranks) {
  PEDAGOGY_CHECK(ranks >= 1, "cannot shard over {} ranks", ranks);
  std::vector<size_t> order(parameters.size());
  std::iota(order.begin(), order.end(), size_t{0});
  // Largest first; ties in parameter order, so every rank computes the same deal.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return parameters[a].second.numel() > parameters[b].second.numel();
  });
  std::vector<int64_t> load(static_cast<size_t>(ranks), 0);
  std::vector<int64_t> owner(parameters.size(), 0);
  for (size_t i : order) {
    const auto lightest =
      static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[i] = static_cast<int64_t>(lightest);
    load[lightest] += parameters[i].second.numel();
  }
  return owner;
}

double clip_grad_norm(const named_tensors& parameters, double max_norm) {
  return clip_grad_norm(grads_of(parameters), max_norm);
}

double clip_grad_norm(const std::vector<at::Tensor>& grads, double max_norm) {
  at::NoGradGuard no_grad;
  // Every parameter's sum of squares stays on the device; the norm is read once.
  std::vector<at::Tensor> squares;
  for (const auto& g : grads)
    if (g.defined())
      squares.push_back(g.to(at::kDouble).pow(2).sum());
  const double norm = squares.empty() ? 0.0 : std::sqrt(at::stack(squares).sum().item<double>());
  // As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when above. A
  // non-finite norm is left for the caller to refuse (scaling would only spread the NaN).
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& g : grads)
      if (g.defined())
        g.mul_(scale);
  }
  return norm;
}

double learning_rate(schedule kind, double lr, int64_t warmup, int64_t step, int64_t total_steps) {
  if (warmup > 0 && step < warmup)
    return lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (kind == schedule::constant || total_steps <= warmup)
    return lr;
  const double progress =
    std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(total_steps - warmup));
  return lr * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

} // namespace pedagogy::models
