// Chat JSONL as supervised fine-tuning examples: each line's messages rendered with the model's
// own chat format, tokenized, and marked where the loss is taken.
//
// A conversation is tokenized the way the generation engine sees a dialog: the prompt up to and
// including the assistant's generation prompt (render(messages[:i], add_generation_prompt=true)),
// then the reply and its end-of-turn token, then the template's text up to the next reply. With
// `assistant_only`, exactly the tokens of each assistant message's rendered content and its
// end-of-turn token are trained (the role header and the template's glue are not); otherwise
// every token is (what the reference's TRL SFTTrainer does). The first token of an example is
// never trained: nothing predicts it.
//
// Every bad row is an input_error naming "file:line", the field and what to do; nothing is
// skipped silently.
#pragma once

#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pedagogy::models {

struct sft_example {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trained; // 1 where the token's log-prob is in the loss
  int64_t line = 0;             // 1-based line of its file (0 = not from a file)

  int64_t trained_tokens() const;
};

// Renders, tokenizes and masks one conversation. Throws input_error (where = "message N") for a
// conversation without an assistant turn or one the format cannot render as a sequence of its
// prefixes (an assistant-only mask is then undefined).
sft_example tokenize_chat(const std::vector<chat_message>& messages, const tokenizer& tok,
                          const chat_format& format, bool assistant_only);

struct chat_jsonl_options {
  std::string messages_field = "messages"; // the list of {role, content} in each row
  bool assistant_only = true;
  int64_t max_length = 4096;                 // tokens; a longer example is refused, naming its line
  int64_t max_examples = 0;                  // read only the first N examples; 0 = all
  std::string length_key = "sft.max_length"; // how errors name the limit and its fix
};

// Every example of a chat JSONL file, in file order. Blank lines hold no example and are passed
// over (they still count for line numbers); a file without any example is an error.
std::vector<sft_example> read_chat_jsonl(const std::filesystem::path& path, const tokenizer& tok,
                                         const chat_format& format,
                                         const chat_jsonl_options& options);

} // namespace pedagogy::models
