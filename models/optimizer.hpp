// The learner's optimizer: AdamW with decoupled weight decay (Loshchilov & Hutter 2019, arXiv
// 1711.05101), step for step what torch.optim.AdamW computes, global gradient-norm clipping, and
// the learning-rate schedule (linear warmup, then constant or cosine to zero). Parameters are
// the model's own named tensors; the state is named tensors too, so checkpoints are safetensors.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pedagogy::models {

using named_tensors = std::vector<std::pair<std::string, at::Tensor>>;

struct adamw_options {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class adamw {
public:
  // The parameters must require gradients; moments are kept in float32 beside them.
  adamw(named_tensors parameters, adamw_options options);

  // One update with the gradients the parameters hold; parameters without one are skipped.
  void step(double lr);
  void zero_grad();
  int64_t steps() const {
    return steps_;
  }

  // "exp_avg.<name>" and "exp_avg_sq.<name>" for every parameter, and the step count.
  named_tensors state() const;
  // Restores what state() returned (names and shapes must match); throws input_error.
  void load_state(const named_tensors& state, int64_t steps, const std::string& where);

private:
  named_tensors parameters_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_;
  adamw_options options_;
  int64_t steps_ = 0;
};

// Scales all gradients so their global L2 norm is at most `max_norm` (0 = no clipping); returns
// the norm before clipping.
double clip_grad_norm(const named_tensors& parameters, double max_norm);

enum class schedule { constant, cosine };

// The learning rate of optimizer step `step` (0-based) out of `total_steps`: linear warmup from
// lr / warmup to lr over `warmup` steps, then constant, or cosine decay to 0 at `total_steps`.
double learning_rate(schedule kind, double lr, int64_t warmup, int64_t step, int64_t total_steps);

} // namespace pedagogy::models
