// Chat formats: turning a list of messages into the exact text a model's own Jinja chat template
// produces under Hugging Face (no tools), without a Jinja engine.
//
//   ChatML (Qwen2/2.5):  <|im_start|>system\n{system or the template's default}<|im_end|>\n
//                        <|im_start|>{role}\n{content}<|im_end|>\n ...   [<|im_start|>assistant\n]
//   Qwen3:               ChatML without a default system prompt; an assistant turn after the last
//                        user turn is written as <think>\n{reasoning}\n</think>\n\n{answer}
//   Llama-3:             <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n
//                        {content, stripped}<|eot_id|> ...   [<|start_header_id|>assistant...\n\n]
//                        (the first release of the template opens the assistant turn always)
//   Llama-3.1/3.2:       Llama-3 with a system block that always opens with
//                        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
//                        (3.2's template asks for today's date, as Hugging Face renders it)
//
// The format is recognised from the model's own chat template (chat_template.jinja, else
// tokenizer_config.json's chat_template) only when that template is, byte for byte, one whose
// rendering we reproduce; any other template is refused rather than approximated. A directory
// without a template (our own init-model models) gets its config.json model_type's format.
#pragma once

#include "models/text/chat_message.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace pedagogy::models {

enum class chat_family { chatml, qwen3, llama3, llama31 };

class chat_format {
public:
  // ChatML; `default_system` is inserted when the dialog has no system message ("" = none).
  static chat_format chatml(std::string default_system);
  static chat_format qwen3();
  static chat_format llama3();
  static chat_format llama31(std::string date_string = "26 Jul 2024");

  // The same format with another "Today Date" (Llama-3.1/3.2 only), e.g. to pin it in a run.
  chat_format with_date(std::string date_string) const;

  // Recognises the format from a Jinja chat template; `where` names it in errors. Throws
  // input_error for a template we cannot render exactly.
  static chat_format from_template(std::string_view jinja, const std::string& where);
  // Reads chat_template.jinja, else tokenizer_config.json's chat_template, else (no template)
  // config.json's model_type.
  static chat_format from_model_dir(const std::filesystem::path& dir);

  // Throws input_error for a role other than system, user and assistant.
  std::string render(const std::vector<chat_message>& messages, bool add_generation_prompt) const;

  // The text that follows an assistant turn already in a session: the rest of the template after
  // that turn, then `messages`, then optionally the generation prompt. When the turn was cut off
  // before its end-of-turn token, `turn_closed` = false puts the token in first.
  // render(m + [reply] + more, g) == render(m, true) + reply + end_of_turn() +
  // continuation(more, g, true) for every family (Qwen3: for replies without thinking).
  std::string continuation(const std::vector<chat_message>& messages, bool add_generation_prompt,
                           bool turn_closed) const;

  chat_family family() const {
    return family_;
  }
  // What opens the assistant's turn, e.g. "<|im_start|>assistant\n".
  std::string generation_prompt() const;
  // The token that ends a turn: "<|im_end|>" or "<|eot_id|>".
  std::string end_of_turn() const;
  // Tokens at which generation stops.
  std::vector<std::string> stop_tokens() const;

private:
  chat_family family_ = chat_family::chatml;
  std::string default_system_;
  std::string date_string_;
  bool always_generation_prompt_ = false; // the template opens an assistant turn regardless
};

// Python's str.strip(): removes leading and trailing characters for which isspace() is true.
std::string python_strip(std::string_view text);

} // namespace pedagogy::models
