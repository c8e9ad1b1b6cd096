// The log-probs of the sampled tokens from the final hidden states, without the [N, V] logits of a
// whole sequence: the LM head, the temperature and the log-softmax run `chunk` rows at a time,
// in the forward and again in the backward (which recomputes each chunk's softmax instead of
// keeping it), so a sequence of 8k tokens at a 152k vocabulary needs one chunk's logits, not
// five gigabytes of them. The values and gradients are those of
// log_softmax(hidden @ weight^T / T)[targets] computed whole (tested), with the logits taken to
// float32 as the whole path does.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>

namespace pedagogy::models {

// hidden [N, C], weight [V, C] (the LM head), targets [N] long -> [N] float32. T <= 0 counts as 1.
// Gradients flow to `hidden` and `weight` when they require them.
at::Tensor token_logprobs(const at::Tensor& hidden, const at::Tensor& weight,
                          const at::Tensor& targets, double temperature, int64_t chunk = 1024);

} // namespace pedagogy::models
