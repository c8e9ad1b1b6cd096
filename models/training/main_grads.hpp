// Float32 gradient accumulation for the bf16 learner: Megatron-LM's main_grad (Shoeybi et al.
// 2019, arXiv 1909.08053; `accumulate_allreduce_grads_in_fp32`, which Megatron turns on with
// bf16). Summed in bf16, the gradients of 16 micro-batches lose bits with every addition (bf16
// keeps 8 bits of mantissa, and a growing partial sum rounds away the small ones); summed here,
// each micro-batch's gradient is rounded to bf16 once.
//
// Every parameter that is not float32 gets a float32 buffer (views of one flat tensor, so zeroing
// is one kernel). A hook after its gradient accumulator, as Megatron's on `grad_acc`, adds each
// backward's bf16 gradient into the buffer as soon as autograd has produced it and frees it, so
// bf16 gradients exist one parameter at a time: the cost is 4 bytes a parameter instead of 2
// (the memory plan counts it). No host read: the add is an in-place kernel. Float32 parameters
// need no buffer: their own .grad is float32.
#pragma once

#include "models/training/optimizer.hpp"

#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace torch::autograd {
struct Node;
}

namespace pedagogy::models {

class main_grads {
public:
  // The parameters must require gradients; each non-float32 one is hooked until destruction.
  explicit main_grads(const named_tensors& parameters);
  ~main_grads();
  main_grads(const main_grads&) = delete;
  main_grads& operator=(const main_grads&) = delete;

  // Before a pass: every gradient back to none.
  void zero();
  // The float32 gradient of each parameter, in order, accumulated since zero(); undefined where
  // no backward reached the parameter (the optimizer skips it, as torch does).
  std::vector<at::Tensor> arrived() const;
  // The same with zeros where none arrived: a sum across ranks needs every tensor on every rank.
  std::vector<at::Tensor> all();
  // Bytes of the float32 buffers.
  int64_t bytes() const;

private:
  struct shared; // what the hooks write into: the parameters, buffers and arrival flags
  struct hook;
  std::shared_ptr<shared> shared_;
  at::Tensor flat_; // every buffer, one after the other
  // Each hooked gradient accumulator (kept alive: a new one would have no hook) and its hook.
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks_;
};

} // namespace pedagogy::models
