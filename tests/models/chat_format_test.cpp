// Chat rendering per family: equal to Hugging Face's rendering of the model's own template
// (reference data from tests/reference/fetch.sh), plus the rules the templates encode.
#include "models/text/chat_format.hpp"
#include "runtime/errors.hpp"
#include "tests/support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace pedagogy::models;

namespace {

const fs::path reference_dir = PEDAGOGY_REFERENCE_DIR;

std::vector<chat_message> messages_of(const json& list) {
  std::vector<chat_message> out;
  for (const auto& m : list)
    out.push_back({m["role"], m["content"]});
  return out;
}

void check_reference(const std::string& family, chat_family expected) {
  const fs::path dir = reference_dir / family;
  if (fs::exists(reference_dir / "UNAVAILABLE") || !fs::exists(dir / "chats.jsonl")) {
    std::cout << "SKIPPED: no reference data for " << family << " (see tests/reference/fetch.sh)\n";
    std::exit(77);
  }
  // The reference pins Llama's "Today Date"; so do we (a no-op for ChatML).
  auto format = chat_format::from_model_dir(dir).with_date("26 Jul 2024");
  CHECK(format.family() == expected);
  std::ifstream in(dir / "chats.jsonl");
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    json row = json::parse(line);
    ++cases;
    const std::string rendered =
      format.render(messages_of(row["messages"]), row["add_generation_prompt"]);
    INFO("messages: " << row["messages"].dump()
                      << " generation prompt: " << row["add_generation_prompt"]);
    CHECK(rendered == row["text"].get<std::string>());
  }
  CHECK(cases >= 12);
}

// Every case of this file uses the same scratch folder name.
struct chat_dir : pedagogy::testing::temp_dir {
  chat_dir() : pedagogy::testing::temp_dir("chat_test") {}
};

} // namespace

TEST_CASE("Qwen2.5 renders like its template, default system prompt included") {
  check_reference("qwen2_5", chat_family::chatml);
}

TEST_CASE("Qwen3 renders like its template, thinking after the last query included") {
  check_reference("qwen3", chat_family::qwen3);
}

TEST_CASE("Llama-3 renders like its template, BOS and stripped contents included") {
  check_reference("llama3_1", chat_family::llama3);
}

TEST_CASE("Llama-3.2 renders like its template, date preamble included") {
  check_reference("llama3_2", chat_family::llama31);
}

TEST_CASE("the first Llama-3 template opens an assistant turn even without a generation prompt") {
  check_reference("llama3_original", chat_family::llama3);
  auto format = chat_format::from_model_dir(reference_dir / "llama3_original");
  CHECK(format.render({{"user", "hi"}}, false) ==
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("Llama-3.1 opens every dialog with the knowledge and date preamble") {
  // Derived by hand from Meta's Llama-3.1 template: the system block is always written.
  auto format = chat_format::llama31();
  const std::string no_system = format.render({{"user", " hi "}}, true);
  CHECK(no_system == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                     "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
                     "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                     "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const std::string with_system = format.render({{"system", "Be brief.\n"}, {"user", "x"}}, false);
  CHECK(with_system ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
        "Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>");
}

TEST_CASE("Qwen3 keeps thinking only after the last user turn") {
  auto format = chat_format::qwen3();
  const std::string text = format.render({{"user", "a"},
                                          {"assistant", "<think>old</think>\n\nA1"},
                                          {"user", "b"},
                                          {"assistant", "<think>\nnew\n</think>\n\nA2"}},
                                         false);
  CHECK(text == "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
                "<|im_start|>user\nb<|im_end|>\n"
                "<|im_start|>assistant\n<think>\nnew\n</think>\n\nA2<|im_end|>\n");
}

TEST_CASE("the format comes from the template, or from model_type when there is none") {
  chat_dir dir;
  std::ofstream(dir.path / "config.json") << R"({"model_type": "qwen3"})";
  CHECK(chat_format::from_model_dir(dir.path).family() == chat_family::qwen3);
  std::ofstream(dir.path / "config.json") << R"({"model_type": "llama"})";
  CHECK(chat_format::from_model_dir(dir.path).family() == chat_family::llama31);
  std::ofstream(dir.path / "config.json") << R"({"model_type": "gpt2"})";
  CHECK_THROWS_AS(chat_format::from_model_dir(dir.path), pedagogy::input_error);
  // A tokenizer_config.json without a template (init-model writes one) keeps model_type's.
  std::ofstream(dir.path / "config.json") << R"({"model_type": "qwen2"})";
  std::ofstream(dir.path / "tokenizer_config.json") << R"({"eos_token": "<|im_end|>"})";
  CHECK(chat_format::from_model_dir(dir.path).render({{"user", "u"}}, false) ==
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nu<|im_end|>\n");
  std::ofstream(dir.path / "tokenizer_config.json") << "{ broken";
  CHECK_THROWS_AS(chat_format::from_model_dir(dir.path), pedagogy::input_error);
}

namespace {

// The message of the input_error from_model_dir throws for `dir` ("" when it does not throw).
std::string template_error(const fs::path& dir) {
  try {
    chat_format::from_model_dir(dir);
  } catch (const pedagogy::input_error& e) {
    CHECK_FALSE(e.hint().empty());
    return e.what();
  }
  return "";
}

json reference_config(const std::string& family) {
  const fs::path path = reference_dir / family / "tokenizer_config.json";
  if (fs::exists(reference_dir / "UNAVAILABLE") || !fs::exists(path)) {
    std::cout << "SKIPPED: no reference data for " << family << " (see tests/reference/fetch.sh)\n";
    std::exit(77);
  }
  std::ifstream in(path);
  return json::parse(in);
}

} // namespace

TEST_CASE("a chat template we cannot render exactly is refused, naming the file") {
  const json qwen = reference_config("qwen2_5");
  const std::string real = qwen["chat_template"];
  chat_dir dir;
  std::ofstream(dir.path / "config.json") << R"({"model_type": "qwen2"})";
  const fs::path file = dir.path / "tokenizer_config.json";
  auto write_template = [&](const json& chat_template) {
    json config = qwen;
    config["chat_template"] = chat_template;
    std::ofstream(file) << config.dump(2);
  };

  std::string changed = real; // one more newline after each user turn
  const std::string turn = "message.content + '<|im_end|>' + '\\n' }}";
  REQUIRE(changed.find(turn) != std::string::npos);
  changed.replace(changed.find(turn), turn.size(), "message.content + '<|im_end|>' + '\\n\\n' }}");
  for (const json& bad :
       {json(changed), json("{{ messages }}"), json("<|im_start|>{{ message }}<|start_header_id|>"),
        json(42), json::array({{{"name", "tool_use"}, {"template", real}}})}) {
    CAPTURE(bad.dump().substr(0, 80));
    write_template(bad);
    const std::string error = template_error(dir.path);
    CHECK(error.find(file.string()) != std::string::npos);
    CHECK(error.find("chat_template") != std::string::npos);
  }

  // The real one, also as the "default" of a list of named templates, is accepted.
  write_template(real);
  CHECK(template_error(dir.path).empty());
  write_template(json::array({{{"name", "default"}, {"template", real}}}));
  CHECK(template_error(dir.path).empty());

  // Qwen2.5's template with another default system prompt (as Qwen2.5-Math ships) keeps it.
  std::string math = real;
  const std::string system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
  for (size_t at = math.find(system); at != std::string::npos; at = math.find(system))
    math.replace(at, system.size(), "Please reason step by step.");
  write_template(math);
  CHECK(chat_format::from_model_dir(dir.path).render({{"user", "u"}}, false) ==
        "<|im_start|>system\nPlease reason step by step.<|im_end|>\n"
        "<|im_start|>user\nu<|im_end|>\n");

  // chat_template.jinja, where recent transformers save the template, comes first.
  std::ofstream(dir.path / "chat_template.jinja") << "{{ messages }}";
  const std::string error = template_error(dir.path);
  CHECK(error.find((dir.path / "chat_template.jinja").string()) != std::string::npos);
  std::ofstream(dir.path / "chat_template.jinja") << real;
  write_template(json("{{ messages }}"));
  CHECK(template_error(dir.path).empty());
}

TEST_CASE("roles other than system, user and assistant are refused") {
  CHECK_THROWS_AS(chat_format::chatml("").render({{"tool", "x"}}, false), pedagogy::input_error);
}

TEST_CASE("strip follows Python's notion of whitespace") {
  CHECK(python_strip(" \t\n x y \r\n") == "x y");
  CHECK(python_strip("\x1c\u3000\u00A0a\u0085") == "a");
  CHECK(python_strip("\uFEFFa") == "\uFEFFa"); // a BOM is not whitespace to Python
  CHECK(python_strip("   ").empty());
}

TEST_CASE("a continuation extends a rendered dialog exactly as a full rendering would") {
  const std::vector<chat_message> start = {{"system", "Be a tutor."}, {"user", "What is 3x = 9?"}};
  const std::string reply = "What could you divide both sides by?";
  const std::vector<chat_message> more = {{"user", "By 3?"}};
  for (const auto& format : {chat_format::chatml("Default."), chat_format::qwen3(),
                             chat_format::llama3(), chat_format::llama31()}) {
    CAPTURE(static_cast<int>(format.family()));
    auto whole = start;
    whole.push_back({"assistant", reply});
    whole.insert(whole.end(), more.begin(), more.end());
    const std::string stepwise = format.render(start, true) + reply + format.end_of_turn() +
                                 format.continuation(more, true, true);
    CHECK(stepwise == format.render(whole, true));
    // A cut-off turn gets its end-of-turn token from the continuation instead.
    CHECK(format.render(start, true) + reply + format.continuation(more, true, false) == stepwise);
  }
}
