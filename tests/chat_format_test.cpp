// Chat rendering per family: equal to Hugging Face's rendering of the model's own template
// (reference data from tests/reference/fetch.sh), plus the rules the templates encode.
#include "models/chat_format.hpp"
#include "runtime/errors.hpp"

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

struct temp_dir {
  fs::path path = fs::temp_directory_path() / "pedagogy_chat_test";
  temp_dir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    fs::remove_all(path);
  }
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
  // The template's own date_string default is honoured.
  auto dated = chat_format::from_template(
    "{%- if not date_string is defined %}{%- set date_string = \"1 Jan 2025\" %}{%- endif %}"
    "<|start_header_id|> Cutting Knowledge Date",
    "t");
  CHECK(dated.family() == chat_family::llama31);
  CHECK(dated.render({}, false).find("Today Date: 1 Jan 2025\n") != std::string::npos);
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
  CHECK(chat_format::from_template("{{ '<|im_start|>system\\nYou are X.<|im_end|>\\n' }}", "t")
          .render({{"user", "u"}}, false) == "<|im_start|>system\nYou are X.<|im_end|>\n"
                                             "<|im_start|>user\nu<|im_end|>\n");
  CHECK_THROWS_AS(chat_format::from_template("{{ messages }}", "t"), pedagogy::input_error);

  temp_dir dir;
  std::ofstream(dir.path / "config.json") << R"({"model_type": "qwen3"})";
  CHECK(chat_format::from_model_dir(dir.path).family() == chat_family::qwen3);
  std::ofstream(dir.path / "config.json") << R"({"model_type": "llama"})";
  CHECK(chat_format::from_model_dir(dir.path).family() == chat_family::llama31);
  std::ofstream(dir.path / "config.json") << R"({"model_type": "gpt2"})";
  CHECK_THROWS_AS(chat_format::from_model_dir(dir.path), pedagogy::input_error);
  std::ofstream(dir.path / "tokenizer_config.json") << "{ broken";
  CHECK_THROWS_AS(chat_format::from_model_dir(dir.path), pedagogy::input_error);
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
