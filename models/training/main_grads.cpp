// Float32 gradient buffers filled by gradient-accumulator hooks (see main_grads.hpp).
#include "models/training/main_grads.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>

namespace pedagogy::models {

struct main_grads::shared {
  std::vector<at::Tensor> parameters;
  std::vector<at::Tensor> buffers; // undefined for float32 parameters
  std::vector<uint8_t> arrived;    // a backward reached the buffer since zero()
};

// Runs after the parameter's AccumulateGrad node, in the backward (on its device's autograd
// thread): the bf16 .grad it left is added into the buffer and dropped, as Megatron's
// `param_hook` does. Reentrant backwards (activation checkpointing) run it the same way.
struct main_grads::hook : torch::autograd::FunctionPostHook {
  hook(std::shared_ptr<shared> state, size_t index) : state(std::move(state)), index(index) {}

  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    at::Tensor& p = state->parameters[index];
    if (p.grad().defined()) {
      at::NoGradGuard no_grad;
      state->buffers[index].add_(p.grad());
      p.mutable_grad() = at::Tensor();
      state->arrived[index] = 1;
    }
    return outputs;
  }

  std::shared_ptr<shared> state;
  size_t index;
};

main_grads::main_grads(const named_tensors& parameters) : shared_(std::make_shared<shared>()) {
  int64_t elements = 0;
  for (const auto& [name, p] : parameters) {
    PEDAGOGY_CHECK(p.requires_grad() && p.is_leaf(), "parameter {} is not a trainable leaf", name);
    shared_->parameters.push_back(p);
    if (p.scalar_type() != at::kFloat)
      elements += p.numel();
  }
  shared_->buffers.resize(parameters.size());
  shared_->arrived.assign(parameters.size(), 0);
  if (elements == 0)
    return;
  flat_ = at::zeros({elements}, parameters.front().second.options().dtype(at::kFloat));
  int64_t offset = 0;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const at::Tensor& p = parameters[i].second;
    if (p.scalar_type() == at::kFloat)
      continue;
    shared_->buffers[i] = flat_.narrow(0, offset, p.numel()).view(p.sizes());
    offset += p.numel();
    auto accumulator = torch::autograd::impl::grad_accumulator(p);
    const auto key = accumulator->add_post_hook(std::make_unique<hook>(shared_, i));
    hooks_.emplace_back(std::move(accumulator), key);
  }
}

main_grads::~main_grads() {
  for (auto& [accumulator, key] : hooks_)
    accumulator->del_post_hook(key);
}

void main_grads::zero() {
  if (flat_.defined())
    flat_.zero_();
  for (auto& p : shared_->parameters)
    if (p.grad().defined())
      p.mutable_grad() = at::Tensor();
  std::fill(shared_->arrived.begin(), shared_->arrived.end(), 0);
}

std::vector<at::Tensor> main_grads::arrived() const {
  std::vector<at::Tensor> out(shared_->parameters.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (shared_->buffers[i].defined()) {
      if (shared_->arrived[i] != 0)
        out[i] = shared_->buffers[i];
    } else {
      out[i] = shared_->parameters[i].grad();
    }
  }
  return out;
}

std::vector<at::Tensor> main_grads::all() {
  for (size_t i = 0; i < shared_->parameters.size(); ++i) {
    at::Tensor& p = shared_->parameters[i];
    if (shared_->buffers[i].defined())
      shared_->arrived[i] = 1; // zeros are its gradient now
    else if (!p.grad().defined())
      p.mutable_grad() = at::zeros_like(p);
  }
  return arrived();
}

int64_t main_grads::bytes() const {
  return flat_.defined() ? flat_.numel() * static_cast<int64_t>(sizeof(float)) : 0;
}

} // namespace pedagogy::models
