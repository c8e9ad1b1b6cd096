// Activation checkpointing (see activation_checkpointing.hpp).
#include "models/tensor/activation_checkpointing.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace pedagogy::models {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The block, kept in the autograd context until the backward has run it again.
struct block_holder : torch::CustomClassHolder {
  std::function<at::Tensor(const at::Tensor&)> block;
};

struct checkpoint_function : public torch::autograd::Function<checkpoint_function> {
  // Autograd is off in here: nothing inside the block is recorded.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x,
                            const std::function<at::Tensor(const at::Tensor&)>& block) {
    auto holder = c10::make_intrusive<block_holder>();
    holder->block = block;
    ctx->saved_data["block"] = at::IValue::make_capsule(std::move(holder));
    ctx->save_for_backward({x});
    return block(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    const auto holder =
      c10::static_intrusive_pointer_cast<block_holder>(ctx->saved_data["block"].toCapsule());
    at::Tensor y;
    {
      at::AutoGradMode enabled(true);
      y = holder->block(x);
    }
    // Reentrant: the weights' gradients accumulate as leaves, x's comes back to the caller.
    torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), at::Tensor()};
  }
};

} // namespace

at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& block,
                        const at::Tensor& x) {
  if (!at::GradMode::is_enabled() || !x.requires_grad())
    return block(x);
  return checkpoint_function::apply(x, block);
}

} // namespace pedagogy::models
