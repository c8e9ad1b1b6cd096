// The learner's optimizer: AdamW with decoupled weight decay (Loshchilov & Hutter 2019, arXiv
// 1711.05101), step for step what torch.optim.AdamW computes, global gradient-norm clipping, and
// the learning-rate schedule (linear warmup, then constant or cosine to zero). Parameters are
// the model's own named tensors; the state is named tensors too, so checkpoints are safetensors.
//
// Mixed precision: a parameter that is not float32 (the bf16 learner's) gets a float32 master
// copy here; the update is made to the master and rounded into the parameter, so small updates
// accumulate instead of vanishing below bf16's precision; the learner passes it float32
// gradients too (models/training/main_grads.hpp). One step is a handful of foreach kernels over all
// parameters (torch's foreach AdamW), without a host read.
//
// ZeRO-1 (Rajbhandari et al. 2020, arXiv 1910.02054): with `owned`, this rank keeps master and
// moments for its share of the parameters only and updates only those; the learner then
// broadcasts each parameter from its owner. shard_owners() deals the parameters to ranks.
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
  // The parameters must require gradients; moments are kept in float32 beside them. `owned`
  // (one flag per parameter; empty = all) says which ones this rank updates and keeps state for.
  adamw(named_tensors parameters, adamw_options options, std::vector<uint8_t> owned = {});

  // One update of the owned parameters with the gradients they hold; parameters without one are
  // skipped.
  void step(double lr);
  // The same with the gradients given, one per parameter (undefined = none), e.g. the bf16
  // learner's float32 accumulation buffers (models/training/main_grads.hpp).
  void step(double lr, const std::vector<at::Tensor>& grads);
  void zero_grad();
  int64_t steps() const {
    return steps_;
  }

  // "exp_avg.<name>" and "exp_avg_sq.<name>" of every owned parameter, and "master.<name>" of
  // those kept in float32 here.
  named_tensors state() const;
  // Restores the owned parameters' moments from `state` (each must be there, shaped as here;
  // other names are ignored); throws input_error. Masters are optional: a float32 learner
  // resuming a bf16 run takes all its weights from them (owned or not, so sharded learners stay
  // identical), a bf16 learner resuming a float32 run starts its masters from its parameters.
  void load_state(const named_tensors& state, int64_t steps, const std::string& where);

  const named_tensors& parameters() const {
    return parameters_;
  }
  bool owns(size_t parameter) const {
    return owned_[parameter] != 0;
  }
  // Bytes of float32 state kept here (masters and moments).
  int64_t state_bytes() const;

private:
  named_tensors parameters_;
  std::vector<uint8_t> owned_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_, master_; // undefined where not owned / fp32
  adamw_options options_;
  int64_t steps_ = 0;
};

// ZeRO-1's partition: the rank (0 .. ranks-1) that owns each parameter, dealing the largest
// parameters first to the least loaded rank, so every rank holds about 1/ranks of the elements.
// The same on every rank (a function of the shapes only).
std::vector<int64_t> shard_owners(const named_tensors& parameters, int64_t ranks);

// Scales all gradients so their global L2 norm is at most `max_norm` (0 = no clipping); returns
// the norm before clipping. `grads` may hold undefined tensors (no gradient).
double clip_grad_norm(const std::vector<at::Tensor>& grads, double max_norm);
// The same for the gradients the parameters hold.
double clip_grad_norm(const named_tensors& parameters, double max_norm);

enum class schedule { constant, cosine };

// The learning rate of optimizer step `step` (0-based) out of `total_steps`: linear warmup from
// lr / warmup to lr over `warmup` steps, then constant, or cosine decay to 0 at `total_steps`.
double learning_rate(schedule kind, double lr, int64_t warmup, int64_t step, int64_t total_steps);

} // namespace pedagogy::models
