// Tutor dialogs as training sequences (DESIGN §5): the tutor's own session history, i.e. the
// exact ids it was shown and sampled (never re-tokenized text), trained exactly where it sampled
// (its end-of-turn tokens included; prompts, student turns and the end token appended after a
// cut turn are context only), with the behaviour log-probs recorded at sampling time.
#pragma once

#include "models/serving/session_history.hpp"
#include "models/training/training_sequence.hpp"

#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace pedagogy::models {

class transformer;

training_sequence from_history(const session_history& history, double advantage);

// Sequences [begin, end) right-padded into tensors; everything is indexed by the predicting
// position: column t is about token t + 1.
struct padded_batch {
  at::Tensor ids;                // [B, T] long, padding 0
  at::Tensor attention;          // [B, T] 1 on tokens, 0 on padding
  at::Tensor mask;               // [B, T - 1] float, 1 where token t + 1 is trained
  at::Tensor behaviour;          // [B, T - 1] float, behaviour log-prob of token t + 1
  at::Tensor advantages;         // [B] float
  at::Tensor imitation;          // [B] float, the imitation weight (0 = a GRPO sequence)
  at::Tensor answer;             // [B, T - 1] float, 1 where token t + 1 spells the answer
  double trained_tokens = 0;     // trained tokens of the GRPO sequences
  double imitated_sequences = 0; // sequences with an imitation weight
};

padded_batch pad(const std::vector<training_sequence>& sequences, size_t begin, size_t end,
                 at::Device device);

// log_softmax(logits / temperature) of ids[:, 1:] under the model: [B, T - 1], float32. Carries
// the gradient when the model's parameters require it. The logits exist `chunk` tokens at a time
// (models/tensor/token_logprobs.hpp), never for the whole batch; chunk 0 computes the whole [B, T,
// V] logits at once (what the learner did before; kept to measure the difference).
at::Tensor sequence_logprobs(const transformer& model, const padded_batch& batch,
                             double temperature, int64_t chunk = 1024);

} // namespace pedagogy::models
