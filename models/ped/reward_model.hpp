// A reward model: a decoder with a sequence-classification head (Hugging Face's
// Qwen2ForSequenceClassification), scoring whole conversations. Each is rendered with the
// model's own chat template (no generation prompt) and scored by the raw logit of label 0 at its
// last token (last-token pooling, no softmax), as the reference's vLLM `task="classify"` does for
// the pedagogical reward model (reference/classroom.md §6).
#pragma once

#include "models/tensor/transformer.hpp"
#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace pedagogy::models {

struct reward_score {
  double value = 0;
  int64_t tokens = 0;     // the rendered conversation's length
  bool truncated = false; // longer than max_length: scored on its last max_length tokens
};

class reward_model {
public:
  // Throws input_error for a directory that is not a one-label classifier, or whose tokenizer or
  // chat template is broken.
  static reward_model load(const std::filesystem::path& dir, at::Device device, int64_t max_length);

  // One score per conversation, in order. Conversations are batched by length, up to
  // `batch_tokens` padded tokens per forward.
  std::vector<reward_score> score(const std::vector<std::vector<chat_message>>& conversations,
                                  int64_t batch_tokens = 16384) const;
  // The same for conversations already tokenized.
  std::vector<reward_score> score_ids(const std::vector<std::vector<int32_t>>& sequences,
                                      int64_t batch_tokens = 16384) const;

  std::vector<int32_t> tokenize(const std::vector<chat_message>& conversation) const;
  const transformer& model() const {
    return *model_;
  }

private:
  std::unique_ptr<transformer> model_;
  std::unique_ptr<tokenizer> tokenizer_;
  chat_format format_;
  int64_t max_length_ = 0;
  reward_model(std::unique_ptr<transformer> model, std::unique_ptr<tokenizer> tok,
               chat_format format, int64_t max_length);
};

} // namespace pedagogy::models
