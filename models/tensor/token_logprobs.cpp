// Chunked log-probs of the sampled tokens (see token_logprobs.hpp): a custom autograd function,
// the one place in models/ that needs LibTorch's autograd API.
#include "models/tensor/token_logprobs.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

namespace pedagogy::models {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// One chunk's scaled logits in float32: [n, V].
at::Tensor scaled_logits(const at::Tensor& hidden, const at::Tensor& weight, double t) {
  at::Tensor z = at::linear(hidden, weight).to(at::kFloat);
  return t != 1.0 ? z / t : z;
}

struct chunked_logprobs : public torch::autograd::Function<chunked_logprobs> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& hidden,
                            const at::Tensor& weight, const at::Tensor& targets, double t,
                            int64_t chunk) {
    const int64_t N = hidden.size(0);
    at::Tensor out = at::empty({N}, hidden.options().dtype(at::kFloat));
    for (int64_t start = 0; start < N; start += chunk) {
      const int64_t n = std::min(chunk, N - start);
      const at::Tensor z = scaled_logits(hidden.narrow(0, start, n), weight, t);
      const at::Tensor next = targets.narrow(0, start, n).unsqueeze(1);
      out.narrow(0, start, n).copy_(at::log_softmax(z, 1).gather(1, next).squeeze(1));
    }
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["t"] = t;
    ctx->saved_data["chunk"] = chunk;
    return out;
  }

  // d logp_i / d z_ij = (1[j = target_i] - softmax_ij) / T for the unscaled logits z = h W^T.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& hidden = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& targets = saved[2];
    const double t = ctx->saved_data["t"].toDouble();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const at::Tensor g = grads[0].to(at::kFloat);
    const int64_t N = hidden.size(0);
    at::Tensor grad_hidden = at::empty_like(hidden);
    at::Tensor grad_weight = at::zeros(weight.sizes(), weight.options().dtype(at::kFloat));
    for (int64_t start = 0; start < N; start += chunk) {
      const int64_t n = std::min(chunk, N - start);
      const at::Tensor h = hidden.narrow(0, start, n);
      at::Tensor dz = at::softmax(scaled_logits(h, weight, t), 1).neg_(); // [n, V]
      dz.scatter_add_(1, targets.narrow(0, start, n).unsqueeze(1), at::ones({n, 1}, dz.options()));
      dz.mul_(g.narrow(0, start, n).unsqueeze(1) / t);
      const at::Tensor dz_w = dz.to(weight.scalar_type());
      grad_hidden.narrow(0, start, n).copy_(at::matmul(dz_w, weight));
      grad_weight.addmm_(dz.t(), h.to(at::kFloat));
    }
    return {grad_hidden, grad_weight.to(weight.scalar_type()), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

} // namespace

at::Tensor token_logprobs(const at::Tensor& hidden, const at::Tensor& weight,
                          const at::Tensor& targets, double temperature, int64_t chunk) {
  PEDAGOGY_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1) &&
                   targets.dim() == 1 && targets.size(0) == hidden.size(0) && chunk >= 1,
                 "token_logprobs: hidden [N, C], weight [V, C], targets [N] and chunk >= 1");
  const double t = temperature > 0 ? temperature : 1.0;
  return chunked_logprobs::apply(hidden, weight, targets.to(at::kLong), t, chunk);
}

} // namespace pedagogy::models
