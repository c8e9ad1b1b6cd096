// AdamW, gradient clipping and the schedule (see optimizer.hpp).
#include "models/optimizer.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <numbers>

namespace pedagogy::models {

adamw::adamw(named_tensors parameters, adamw_options options)
  : parameters_(std::move(parameters)), options_(options) {
  for (const auto& [name, p] : parameters_) {
    PEDAGOGY_CHECK(p.requires_grad(), "parameter {} does not require gradients", name);
    exp_avg_.push_back(at::zeros_like(p, p.options().dtype(at::kFloat)));
    exp_avg_sq_.push_back(at::zeros_like(p, p.options().dtype(at::kFloat)));
  }
}

void adamw::step(double lr) {
  at::NoGradGuard no_grad;
  ++steps_;
  const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(steps_));
  const double bias2 = 1.0 - std::pow(options_.beta2, static_cast<double>(steps_));
  for (size_t i = 0; i < parameters_.size(); ++i) {
    at::Tensor& p = parameters_[i].second;
    if (!p.grad().defined())
      continue;
    const at::Tensor g = p.grad().to(at::kFloat);
    at::Tensor& m = exp_avg_[i];
    at::Tensor& v = exp_avg_sq_[i];
    // The order of torch.optim.AdamW (single-tensor path): decay, moments, then the update.
    at::Tensor master = p.to(at::kFloat);
    master.mul_(1.0 - lr * options_.weight_decay);
    m.lerp_(g, 1.0 - options_.beta1);
    v.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    const at::Tensor denom = (v.sqrt() / std::sqrt(bias2)).add_(options_.eps);
    master.addcdiv_(m, denom, -lr / bias1);
    p.copy_(master);
  }
}

void adamw::zero_grad() {
  for (auto& [name, p] : parameters_)
    if (p.grad().defined())
      p.mutable_grad() = at::Tensor();
}

named_tensors adamw::state() const {
  named_tensors out;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    out.emplace_back("exp_avg." + parameters_[i].first, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + parameters_[i].first, exp_avg_sq_[i]);
  }
  return out;
}

void adamw::load_state(const named_tensors& state, int64_t steps, const std::string& where) {
  std::map<std::string, at::Tensor> by_name(state.begin(), state.end());
  if (by_name.size() != 2 * parameters_.size())
    throw input_error(where,
                      fmt::format("optimizer state has {} tensors, the model needs {}",
                                  by_name.size(), 2 * parameters_.size()),
                      "the checkpoint belongs to another model");
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
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
  steps_ = steps;
}

double clip_grad_norm(const named_tensors& parameters, double max_norm) {
  at::NoGradGuard no_grad;
  // Every parameter's sum of squares stays on the device; the norm is read once.
  std::vector<at::Tensor> squares;
  for (const auto& [name, p] : parameters)
    if (p.grad().defined())
      squares.push_back(p.grad().to(at::kDouble).pow(2).sum());
  const double norm = squares.empty() ? 0.0 : std::sqrt(at::stack(squares).sum().item<double>());
  // As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when above. A
  // non-finite norm is left for the caller to refuse (scaling would only spread the NaN).
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& [name, p] : parameters)
      if (p.grad().defined())
        p.grad().mul_(scale);
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
