// Renders chat messages the way each family's Jinja template does (see chat_format.hpp).
#include "models/text/chat_format.hpp"

#include "models/weights/model_files.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <ctime>
#include <optional>
#include <regex>

namespace pedagogy::models {

namespace {

using json = nlohmann::json;

// Python's str.isspace() code points, in UTF-8 (ASCII ones handled separately).
constexpr std::string_view python_spaces[] = {
  "\xC2\x85",     "\xC2\xA0",     "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81",
  "\xE2\x80\x82", "\xE2\x80\x83", "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86",
  "\xE2\x80\x87", "\xE2\x80\x88", "\xE2\x80\x89", "\xE2\x80\x8A", "\xE2\x80\xA8",
  "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80"};

// Length of the Python whitespace character at the start (or end) of `text`, or 0.
size_t space_at(std::string_view text, bool at_end) {
  if (text.empty())
    return 0;
  const unsigned char c = static_cast<unsigned char>(at_end ? text.back() : text.front());
  if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20))
    return 1;
  for (std::string_view s : python_spaces) {
    if (at_end ? text.ends_with(s) : text.starts_with(s))
      return s.size();
  }
  return 0;
}

// Python's str.lstrip(chars) / rstrip(chars) / strip(chars) for a set of ASCII characters.
std::string_view lstrip(std::string_view s, std::string_view chars) {
  size_t i = s.find_first_not_of(chars);
  return i == std::string_view::npos ? std::string_view{} : s.substr(i);
}
std::string_view rstrip(std::string_view s, std::string_view chars) {
  size_t i = s.find_last_not_of(chars);
  return i == std::string_view::npos ? std::string_view{} : s.substr(0, i + 1);
}

// Python's s.split(sep)[0] and s.split(sep)[-1].
std::string_view before_first(std::string_view s, std::string_view sep) {
  size_t i = s.find(sep);
  return i == std::string_view::npos ? s : s.substr(0, i);
}
std::string_view after_last(std::string_view s, std::string_view sep) {
  size_t i = s.rfind(sep);
  return i == std::string_view::npos ? s : s.substr(i + sep.size());
}

void check_roles(const std::vector<chat_message>& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant")
      throw input_error(fmt::format("message {}", i), fmt::format("unknown role '{}'", role),
                        "use \"system\", \"user\" or \"assistant\"");
  }
}

std::string render_chatml(const std::vector<chat_message>& messages, bool add_generation_prompt,
                          const std::string& default_system) {
  std::string out;
  const bool has_system = !messages.empty() && messages[0].role == "system";
  if (has_system)
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  else if (!default_system.empty())
    out += "<|im_start|>system\n" + default_system + "<|im_end|>\n";
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i)
    out += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
  if (add_generation_prompt)
    out += "<|im_start|>assistant\n";
  return out;
}

std::string render_qwen3(const std::vector<chat_message>& messages, bool add_generation_prompt) {
  std::string out;
  const bool has_system = !messages.empty() && messages[0].role == "system";
  if (has_system)
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  // Thinking is kept only in assistant turns after the last user query.
  size_t last_query = messages.empty() ? 0 : messages.size() - 1;
  for (size_t i = messages.size(); i-- > 0;) {
    const auto& c = messages[i].content;
    bool tool_response = c.starts_with("<tool_response>") && c.ends_with("</tool_response>");
    if (messages[i].role == "user" && !tool_response) {
      last_query = i;
      break;
    }
  }
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (m.role != "assistant") {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      continue;
    }
    std::string_view content = m.content;
    std::string_view reasoning;
    if (content.find("</think>") != std::string_view::npos) {
      std::string_view whole = m.content;
      content = lstrip(after_last(whole, "</think>"), "\n");
      reasoning =
        lstrip(after_last(rstrip(before_first(whole, "</think>"), "\n"), "<think>"), "\n");
    }
    const bool last = i + 1 == messages.size();
    const bool after_query = i > last_query;
    if (after_query && (last || !reasoning.empty()))
      out += fmt::format("<|im_start|>assistant\n<think>\n{}\n</think>\n\n{}",
                         lstrip(rstrip(reasoning, "\n"), "\n"), lstrip(content, "\n"));
    else
      out += fmt::format("<|im_start|>assistant\n{}", content);
    out += "<|im_end|>\n";
  }
  if (add_generation_prompt)
    out += "<|im_start|>assistant\n";
  return out;
}

std::string llama_turn(const std::string& role, std::string_view content) {
  return "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + python_strip(content) +
         "<|eot_id|>";
}

std::string render_llama3(const std::vector<chat_message>& messages, bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i)
    out += (i == 0 ? "<|begin_of_text|>" : "") + llama_turn(messages[i].role, messages[i].content);
  if (add_generation_prompt)
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_llama31(const std::vector<chat_message>& messages, bool add_generation_prompt,
                           const std::string& date) {
  const bool has_system = !messages.empty() && messages[0].role == "system";
  std::string out = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n";
  out += "Cutting Knowledge Date: December 2023\nToday Date: " + date + "\n\n";
  out += (has_system ? python_strip(messages[0].content) : std::string{}) + "<|eot_id|>";
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i)
    out += llama_turn(messages[i].role, messages[i].content);
  if (add_generation_prompt)
    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

json read_json(const std::filesystem::path& path) {
  const std::string text = read_regular_file(path, "point at a Hugging Face model directory");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw input_error(path.string(), fmt::format("not valid JSON: {}", e.what()),
                      "the file is truncated or corrupted: copy it again");
  }
}

const char* const template_file_hint =
  "chat_template.jinja holds the model's Jinja chat template as saved by transformers";

// ---- recognising a template --------------------------------------------------------------------
//
// A template is accepted only when it is, byte for byte, one whose rendering we reproduce (and
// test against Hugging Face's Jinja in tests/models/chat_format_test.cpp). Its one free part,
// Qwen2.5's default system prompt, is cut out before the comparison; a trailing newline after the
// last block tag, which Jinja's trim_blocks removes anyway, is ignored.

// 64-bit FNV-1a, as 16 hex digits: stable across compilers and runs, unlike std::hash.
std::string fnv1a(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

// The default system prompt of a ChatML template: the literal in
// '<|im_start|>system\n...<|im_end|>', raw (Jinja escapes still in it).
std::optional<std::string> raw_default_system(std::string_view jinja) {
  static const std::regex literal(R"('<\|im_start\|>system\\n([^'+]*)<\|im_end\|>)");
  std::match_results<std::string_view::const_iterator> match;
  if (!std::regex_search(jinja.begin(), jinja.end(), match, literal) || match[1].length() == 0)
    return std::nullopt;
  return match[1].str();
}

// The text of a single-quoted Jinja string literal; nullopt for an escape we do not decode.
std::optional<std::string> unescape_jinja(std::string_view raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      out += raw[i];
      continue;
    }
    if (++i == raw.size())
      return std::nullopt;
    switch (raw[i]) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case '\\':
      case '"':
        out += raw[i];
        break;
      default:
        return std::nullopt;
    }
  }
  return out;
}

std::optional<std::string> default_system_of(std::string_view jinja) {
  auto raw = raw_default_system(jinja);
  return raw ? unescape_jinja(*raw) : std::nullopt;
}

std::string template_fingerprint(std::string_view jinja) {
  std::string text(jinja);
  if (text.ends_with("%}\n"))
    text.pop_back();
  if (auto raw = raw_default_system(jinja); raw && unescape_jinja(*raw)) {
    const std::string placeholder = "{default_system}";
    for (size_t at = text.find(*raw); at != std::string::npos;
         at = text.find(*raw, at + placeholder.size()))
      text.replace(at, raw->size(), placeholder);
  }
  return fnv1a(text);
}

struct known_template {
  std::string_view fingerprint;
  std::string_view source; // where the template comes from
  chat_family family;
  bool always_generation_prompt;
};

constexpr known_template known_templates[] = {
  {"84e6b4d276750a3f", "Qwen2.5 Instruct (any default system prompt)", chat_family::chatml, false},
  {"2bfdb7aa9754484e", "Qwen3", chat_family::qwen3, false},
  {"0e60067a5537498e", "Meta-Llama-3-8B-Instruct, updated", chat_family::llama3, false},
  {"74891e390e614ae2", "Meta-Llama-3-8B-Instruct, first release", chat_family::llama3, true},
  {"368f4c34b8554414", "Llama-3.2 Instruct", chat_family::llama31, false},
};

// A tokenizer_config.json's chat_template: a string, or a list of named templates whose
// "default" is the one transformers renders.
std::string template_text(const json& value, const std::string& where) {
  if (value.is_string())
    return value.get<std::string>();
  if (value.is_array()) {
    for (const json& entry : value)
      if (entry.is_object() && entry.value("name", json()) == "default" &&
          entry.contains("template") && entry["template"].is_string())
        return entry["template"].get<std::string>();
    throw input_error(where, "the chat_template list has no template named \"default\"",
                      "transformers renders the \"default\" one; name the chat template so");
  }
  throw input_error(where, fmt::format("the chat_template is {}, not a string", value.type_name()),
                    "copy the model's original tokenizer_config.json");
}

} // namespace

std::string python_strip(std::string_view text) {
  while (size_t n = space_at(text, false))
    text.remove_prefix(n);
  while (size_t n = space_at(text, true))
    text.remove_suffix(n);
  return std::string(text);
}

chat_format chat_format::chatml(std::string default_system) {
  chat_format f;
  f.family_ = chat_family::chatml;
  f.default_system_ = std::move(default_system);
  return f;
}

chat_format chat_format::qwen3() {
  chat_format f;
  f.family_ = chat_family::qwen3;
  return f;
}

chat_format chat_format::llama3() {
  chat_format f;
  f.family_ = chat_family::llama3;
  return f;
}

chat_format chat_format::llama31(std::string date_string) {
  chat_format f;
  f.family_ = chat_family::llama31;
  f.date_string_ = std::move(date_string);
  return f;
}

chat_format chat_format::with_date(std::string date_string) const {
  chat_format f = *this;
  f.date_string_ = std::move(date_string);
  return f;
}

chat_format chat_format::from_template(std::string_view jinja, const std::string& where) {
  const std::string fingerprint = template_fingerprint(jinja);
  const known_template* known = nullptr;
  for (const auto& k : known_templates)
    if (k.fingerprint == fingerprint)
      known = &k;
  if (known == nullptr)
    throw input_error(
      where,
      fmt::format("the chat_template (fingerprint {}) is not one we can render exactly",
                  fingerprint),
      "accepted: the templates of Qwen2.5 (with any default system prompt), Qwen3, Llama-3 (both "
      "releases) and Llama-3.2; to run another model, add its template to chat_format.cpp with a "
      "test against Hugging Face's rendering (tests/reference)");
  chat_format f;
  switch (known->family) {
    case chat_family::chatml:
      f = chatml(*default_system_of(jinja));
      break;
    case chat_family::qwen3:
      f = qwen3();
      break;
    case chat_family::llama3:
      f = llama3();
      break;
    case chat_family::llama31: {
      // Llama-3.2 dates the prompt with strftime_now("%d %b %Y"), which transformers provides.
      std::time_t now = std::time(nullptr);
      char today[32];
      std::strftime(today, sizeof today, "%d %b %Y", std::localtime(&now));
      f = llama31(today);
      break;
    }
  }
  f.always_generation_prompt_ = known->always_generation_prompt;
  return f;
}

chat_format chat_format::from_model_dir(const std::filesystem::path& dir) {
  // Recent transformers save the template as a file of its own, which then takes precedence.
  const auto jinja_path = dir / "chat_template.jinja";
  // A link to nothing is read too, so that it is refused instead of quietly passed over.
  const auto present = [](const std::filesystem::path& path) {
    std::error_code ec;
    return std::filesystem::symlink_status(path, ec).type() !=
           std::filesystem::file_type::not_found;
  };
  std::error_code ec;
  if (present(jinja_path))
    return from_template(read_regular_file(jinja_path, template_file_hint), jinja_path.string());
  const auto config_path = dir / "tokenizer_config.json";
  if (present(config_path)) {
    json config = read_json(config_path);
    if (!config.is_object())
      throw input_error(config_path.string(), "is not a JSON object",
                        "copy the model's original tokenizer_config.json");
    auto it = config.find("chat_template");
    if (it != config.end() && !it->is_null())
      return from_template(template_text(*it, config_path.string()), config_path.string());
  }
  // No template at all: a model of our own (init-model), rendered as its family's chat models.
  const auto model_config = dir / "config.json";
  if (!std::filesystem::exists(model_config, ec))
    throw input_error(dir.string(), "has neither a chat template nor a config.json",
                      "point at a Hugging Face model directory");
  const json config = read_json(model_config);
  const std::string type =
    config.is_object() && config.contains("model_type") && config["model_type"].is_string()
      ? config["model_type"].get<std::string>()
      : "";
  if (type == "qwen2")
    return chatml("You are a helpful assistant.");
  if (type == "qwen3")
    return qwen3();
  if (type == "llama")
    return llama31();
  throw input_error(model_config.string(),
                    fmt::format("model_type '{}' has no known chat format", type),
                    "supported: qwen2, qwen3, llama");
}

std::string chat_format::render(const std::vector<chat_message>& messages,
                                bool add_generation_prompt) const {
  check_roles(messages);
  add_generation_prompt = add_generation_prompt || always_generation_prompt_;
  switch (family_) {
    case chat_family::chatml:
      return render_chatml(messages, add_generation_prompt, default_system_);
    case chat_family::qwen3:
      return render_qwen3(messages, add_generation_prompt);
    case chat_family::llama3:
      return render_llama3(messages, add_generation_prompt);
    case chat_family::llama31:
      return render_llama31(messages, add_generation_prompt, date_string_);
  }
  return {};
}

std::string chat_format::continuation(const std::vector<chat_message>& messages,
                                      bool add_generation_prompt, bool turn_closed) const {
  check_roles(messages);
  add_generation_prompt = add_generation_prompt || always_generation_prompt_;
  std::string out = turn_closed ? "" : end_of_turn();
  const bool chatml = family_ == chat_family::chatml || family_ == chat_family::qwen3;
  if (chatml) {
    out += "\n"; // the template's newline after <|im_end|>
    for (const auto& m : messages)
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  } else {
    for (const auto& m : messages)
      out += llama_turn(m.role, m.content);
  }
  if (add_generation_prompt)
    out += generation_prompt();
  return out;
}

std::string chat_format::generation_prompt() const {
  return family_ == chat_family::chatml || family_ == chat_family::qwen3
           ? "<|im_start|>assistant\n"
           : "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

std::string chat_format::end_of_turn() const {
  return family_ == chat_family::chatml || family_ == chat_family::qwen3 ? "<|im_end|>"
                                                                         : "<|eot_id|>";
}

std::vector<std::string> chat_format::stop_tokens() const {
  if (family_ == chat_family::chatml || family_ == chat_family::qwen3)
    return {"<|im_end|>", "<|endoftext|>"};
  return {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"};
}

} // namespace pedagogy::models
