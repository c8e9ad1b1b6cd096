// Chat JSONL to tokenized, masked examples (see sft_examples.hpp).
#include "models/sft/sft_examples.hpp"

#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <numeric>

namespace pedagogy::models {

namespace {

using json = nlohmann::json;

void append(std::vector<int32_t>& tokens, std::vector<uint8_t>& trained, const tokenizer& tok,
            std::string_view text, bool train) {
  const auto ids = tok.encode(text);
  tokens.insert(tokens.end(), ids.begin(), ids.end());
  trained.insert(trained.end(), ids.size(), train ? 1 : 0);
}

std::string kind_of(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    case json::value_t::binary:
    case json::value_t::discarded:
      return "not JSON";
  }
  return "not JSON";
}

// The messages of one row, or an input_error naming the field.
std::vector<chat_message> messages_of(const json& row, const std::string& where,
                                      const std::string& field) {
  const std::string shape = "each line is {\"" + field +
                            "\": [{\"role\": \"user\", \"content\": \"...\"}, {\"role\": "
                            "\"assistant\", \"content\": \"...\"}]}";
  if (!row.is_object())
    throw input_error(where, fmt::format("the line is {}, not a JSON object", kind_of(row)), shape);
  auto it = row.find(field);
  if (it == row.end()) {
    std::string keys;
    for (const auto& [key, value] : row.items())
      keys += (keys.empty() ? "" : ", ") + key;
    throw input_error(where, fmt::format("no field '{}' (the row has: {})", field, keys),
                      "set sft.messages_field to the field that holds the list of messages");
  }
  if (!it->is_array() || it->empty())
    throw input_error(where,
                      fmt::format("field '{}' is {}, not a list of messages", field,
                                  it->is_array() ? "an empty list" : kind_of(*it)),
                      shape);
  std::vector<chat_message> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string name = fmt::format("{}[{}]", field, i);
    if (!m.is_object())
      throw input_error(where, fmt::format("{} is {}, not an object", name, kind_of(m)),
                        "each message is {\"role\": ..., \"content\": ...}");
    auto role = m.find("role");
    auto content = m.find("content");
    if (role == m.end() || !role->is_string())
      throw input_error(
        where,
        fmt::format("{}.role is {}", name,
                    role == m.end() ? "missing" : kind_of(*role) + ", not a string"),
        "each message is {\"role\": ..., \"content\": ...}");
    const auto r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant")
      throw input_error(where,
                        fmt::format("{}.role is '{}', not system, user or assistant", name, r),
                        "rename the role (e.g. 'human' -> 'user', 'gpt' -> 'assistant') or drop "
                        "the message");
    if (content == m.end() || !content->is_string())
      throw input_error(
        where,
        fmt::format("{}.content is {}", name,
                    content == m.end() ? "missing" : kind_of(*content) + ", not a string"),
        "give every message its text as a string");
    out.push_back({r, content->get<std::string>()});
  }
  return out;
}

} // namespace

int64_t sft_example::trained_tokens() const {
  return std::accumulate(trained.begin(), trained.end(), int64_t{0});
}

sft_example tokenize_chat(const std::vector<chat_message>& messages, const tokenizer& tok,
                          const chat_format& format, bool assistant_only) {
  const std::string full = format.render(messages, /*add_generation_prompt=*/false);
  const std::string eot = format.end_of_turn();
  sft_example out;
  size_t done = 0; // bytes of `full` tokenized so far
  bool any_assistant = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant")
      continue;
    any_assistant = true;
    const std::vector<chat_message> before(messages.begin(), messages.begin() + i);
    const std::string prompt = format.render(before, /*add_generation_prompt=*/true);
    // The reply is what follows the prompt in the whole conversation, up to its end-of-turn
    // token. (Qwen3 writes the last assistant turn with a think block and earlier ones without,
    // so the conversation is compared with the prompt alone, never with a rendering that ends
    // at this turn.)
    const size_t eot_at =
      full.size() > prompt.size() ? full.find(eot, prompt.size()) : std::string::npos;
    const bool prefixes = prompt.size() >= done && eot_at != std::string::npos &&
                          full.compare(0, prompt.size(), prompt) == 0;
    if (!prefixes) {
      if (assistant_only)
        throw input_error(fmt::format("message {}", i),
                          "the chat format does not render this conversation as a sequence of "
                          "its prompts, so the assistant's tokens cannot be told apart",
                          "train on every token with sft.loss_on = \"all\"");
      out = {};
      append(out.tokens, out.trained, tok, full, true); // whole, in one piece
      done = full.size();
      break;
    }
    const size_t end = eot_at + eot.size();
    append(out.tokens, out.trained, tok, std::string_view(full).substr(done, prompt.size() - done),
           !assistant_only);
    append(out.tokens, out.trained, tok,
           std::string_view(full).substr(prompt.size(), end - prompt.size()), true);
    done = end;
  }
  if (!any_assistant)
    throw input_error("messages", "no assistant turn: nothing to learn from",
                      "every example needs at least one {\"role\": \"assistant\", ...} message");
  if (done < full.size())
    append(out.tokens, out.trained, tok, std::string_view(full).substr(done), !assistant_only);
  if (!out.trained.empty())
    out.trained[0] = 0; // nothing predicts the first token
  return out;
}

std::vector<sft_example> read_chat_jsonl(const std::filesystem::path& path, const tokenizer& tok,
                                         const chat_format& format,
                                         const chat_jsonl_options& options) {
  files::reader in(path, "point sft.train (and sft.val) at a chat JSONL file");
  std::vector<sft_example> out;
  std::string line;
  int64_t number = 0;
  while ((options.max_examples == 0 || static_cast<int64_t>(out.size()) < options.max_examples) &&
         in.next_line(line)) {
    ++number;
    if (line.find_first_not_of(" \t") == std::string::npos)
      continue;
    const std::string where = fmt::format("{}:{}", path.string(), number);
    json row;
    try {
      row = json::parse(line);
    } catch (const json::parse_error& e) {
      throw input_error(where, fmt::format("not valid JSON ({})", e.what()),
                        "each line must be one JSON object (JSONL), with UTF-8 text");
    }
    const auto messages = messages_of(row, where, options.messages_field);
    sft_example example;
    try {
      example = tokenize_chat(messages, tok, format, options.assistant_only);
    } catch (const input_error& e) {
      const std::string field = e.where() == "messages" ? options.messages_field
                                                        : options.messages_field + ": " + e.where();
      throw input_error(where, fmt::format("{}: {}", field, e.problem()), e.hint());
    }
    if (static_cast<int64_t>(example.tokens.size()) > options.max_length)
      throw input_error(
        where,
        fmt::format("the example has {} tokens, more than {} = {}", example.tokens.size(),
                    options.length_key, options.max_length),
        fmt::format("raise {} to at least {}, or shorten or remove this example (it is refused "
                    "rather than cut, so no reply is trained without its end)",
                    options.length_key, example.tokens.size()));
    example.line = number;
    out.push_back(std::move(example));
  }
  if (out.empty())
    throw input_error(path.string(), "no examples: the file is empty",
                      "give one JSON object per line, each with a list of messages");
  return out;
}

} // namespace pedagogy::models
