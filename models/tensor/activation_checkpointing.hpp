// Activation checkpointing: a block of the model run without keeping its activations for the
// backward pass, which runs the block again (with gradients) and back-propagates through that
// (as torch.utils.checkpoint's reentrant variant). A decoder layer of a 7B model at 8k tokens
// keeps gigabytes of activations for the backward; checkpointed, it keeps its input alone.
#pragma once

#include <ATen/Tensor.h>

#include <functional>

namespace pedagogy::models {

// `block(x)`, checkpointed when gradients are being recorded and `x` requires them; otherwise a
// plain call. `block` must be deterministic (it runs twice) and must stay callable until the
// backward is done: capture tensors by value. Gradients reach `x` and every tensor `block` uses
// that requires them (the weights accumulate theirs as with the plain call).
at::Tensor checkpointed(const std::function<at::Tensor(const at::Tensor&)>& block,
                        const at::Tensor& x);

} // namespace pedagogy::models
