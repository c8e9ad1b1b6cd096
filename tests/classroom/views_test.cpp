// The shipped prompt templates and the views rendered from them: who sees what, hidden
// thinking, the judge's bullet list, a missing template named by path.
#include "classroom/views.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

using namespace pedagogy;
using namespace pedagogy::classroom;
namespace fs = std::filesystem;

namespace {

const fs::path templates = fs::path(PEDAGOGY_SOURCE_DIR) / "prompt_templates";
const std::vector<std::string> rules = {"does_not_leak_answer", "follows_pedagogical_values"};

prompt_set shipped() {
  return prompt_set::load(templates, {"simple_student"}, rules);
}

cast someone(const std::string& name = "Riley", bool thinking = false) {
  return {"What is 6 times 7?", name, "simple_student", thinking};
}

// Guided dialog: tutor (with thinking and an end marker), student, tutor.
conversation sample_dialog() {
  dialog_limits limits;
  limits.judge_rules = rules;
  conversation c(dialog_type::guided, limits);
  c.start();
  c.on_tutor_reply("<think>It is 42; do not say it.</think>What does 6 times 7 mean?", 12);
  c.on_student_reply("Six groups of seven?", 5);
  c.on_tutor_reply("Exactly. Count them up. <end_of_conversation>", 8);
  return c;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("the tutor's prompt names the student, states the problem, and explains thinking only "
          "when asked") {
  const auto prompts = shipped();
  const auto plain = tutor_view(prompts, someone(), conversation(dialog_type::guided, {}));
  REQUIRE(plain.size() == 1);
  CHECK(plain[0].role == "system");
  CHECK(plain[0].content.find("a student named Riley") != std::string::npos);
  CHECK(plain[0].content.find("What is 6 times 7?") != std::string::npos);
  CHECK(plain[0].content.find("<end_of_conversation>") != std::string::npos);
  CHECK(plain[0].content.find("<think>") == std::string::npos);
  CHECK(plain[0].content.find("{{") == std::string::npos);
  CHECK(plain[0].content.find("{#") == std::string::npos);

  const auto unnamed = tutor_view(prompts, someone(""), conversation(dialog_type::guided, {}));
  CHECK(unnamed[0].content.find("named") == std::string::npos);
  const auto thinking =
    tutor_view(prompts, someone("Riley", true), conversation(dialog_type::guided, {}));
  CHECK(thinking[0].content.find("<think>") != std::string::npos);
}

TEST_CASE("the tutor sees its own raw turns, the student sees them without thinking or markers") {
  const auto prompts = shipped();
  const auto dialog = sample_dialog();
  const auto tutor = tutor_view(prompts, someone(), dialog);
  REQUIRE(tutor.size() == 4);
  CHECK(tutor[1].role == "assistant");
  CHECK(tutor[1].content.find("It is 42") != std::string::npos);
  CHECK(tutor[2].role == "user");
  CHECK(tutor[3].content.find("<end_of_conversation>") != std::string::npos);

  const auto student = student_view(prompts, someone(), dialog);
  REQUIRE(student.size() == 4);
  CHECK(student[0].content.find("Riley") != std::string::npos);
  CHECK(student[1].role == "user");
  CHECK(student[1].content == "What does 6 times 7 mean?");
  CHECK(student[2].role == "assistant");
  CHECK(student[3].content.find("end_of_conversation") == std::string::npos);

  const auto final_view = final_solution_view(prompts, someone(), dialog);
  REQUIRE(final_view.size() == 5);
  CHECK(final_view.back().role == "user");
  CHECK(final_view.back().content.find("\\boxed{}") != std::string::npos);
}

TEST_CASE("an attempted dialog's first prompt is the problem alone, the attempt gets wrapped") {
  const auto prompts = shipped();
  const auto first = initial_attempt_view(prompts, someone());
  REQUIRE(first.size() == 1);
  CHECK(first[0].role == "system");
  CHECK(first[0].content.find("What is 6 times 7?") != std::string::npos);
  CHECK(first[0].content.find("concise") != std::string::npos);
  const auto wrapped = wrap_attempt(prompts, "6*7 = \\boxed{42}");
  CHECK(wrapped.find("6*7 = \\boxed{42}") != std::string::npos);
  CHECK(wrapped.size() > std::string("6*7 = \\boxed{42}").size());
  const auto before = pre_dialog_view(prompts, someone());
  REQUIRE(before.size() == 1);
  CHECK(before[0].role == "user");
}

TEST_CASE("each judge sees the hidden dialog as one bullet per message and must answer in JSON") {
  const auto prompts = shipped();
  const auto dialog = sample_dialog();
  for (const auto& rule : rules) {
    CAPTURE(rule);
    const auto text = judge_prompt(prompts, rule, dialog);
    const auto begin = text.find("==BEGIN CONVERSATION==");
    REQUIRE(begin != std::string::npos);
    const auto body = text.substr(begin);
    CHECK(count(body, "- Teacher: ") == 2);
    CHECK(count(body, "- Student: ") == 1);
    CHECK(body.find("It is 42") == std::string::npos);
    CHECK(body.find("<end_of_conversation>") == std::string::npos);
    CHECK(text.find("\"decision\"") != std::string::npos);
    CHECK(text.find("REJECT") != std::string::npos);
    // Few-shot examples with both outcomes.
    CHECK(count(text, "\"decision\": \"OK\"") >= 1);
    CHECK(count(text, "\"decision\": \"REJECT\"") >= 1);
  }
}

TEST_CASE("a missing template is named by its path, a broken one by path and line") {
  const fs::path dir = fs::temp_directory_path() / "pedagogy_views_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& entry : fs::recursive_directory_iterator(templates)) {
    const auto to = dir / fs::relative(entry.path(), templates);
    if (entry.is_directory())
      fs::create_directories(to);
    else
      fs::copy_file(entry.path(), to);
  }
  try {
    prompt_set::load(dir, {"curious_student"}, rules);
    FAIL("a missing persona loaded");
  } catch (const input_error& e) {
    CHECK(std::string(e.where()).find("personas/curious_student.txt") != std::string::npos);
  }
  std::ofstream(dir / "tutor.txt") << "Hello\n{% if student_name %}\nno end\n";
  try {
    prompt_set::load(dir, {"simple_student"}, rules);
    FAIL("a broken template loaded");
  } catch (const input_error& e) {
    CHECK(std::string(e.where()).find("tutor.txt:") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("the reward model scores each tutor turn that opens or follows a student turn") {
  const auto prompts = ped_rm_prompts::load(templates);
  std::vector<dialog_message> messages = {
    {true, "<think>42</think>Where would you start?", 5},
    {false, "With the sum?", 3},
    {true, "Good. <end_of_conversation>", 4},
    {true, "A second tutor message in a row", 6}, // follows a tutor turn: not scored
    {false, "Done.", 1},
    {true, "Well done.", 2},
  };
  const auto inputs = ped_rm_inputs(prompts, "What is 6 times 7?", messages);
  REQUIRE(inputs.size() == 3);
  CHECK(inputs[0].message == 0);
  CHECK(inputs[1].message == 2);
  CHECK(inputs[2].message == 5);
  // The prompt: system instructions, then the problem with an empty reference solution.
  const auto& first = inputs[0].conversation;
  REQUIRE(first.size() == 3);
  CHECK(first[0].role == "system");
  CHECK(first[0].content.find("pedagogical") != std::string::npos);
  CHECK(first[1].role == "user");
  CHECK(first[1].content.find("Problem: What is 6 times 7?") == 0);
  CHECK(first[1].content.find("Reference Solution:") != std::string::npos);
  // The scored turn is last, hidden: no thinking, no end marker.
  CHECK(first[2].role == "assistant");
  CHECK(first[2].content == "Where would you start?");
  const auto& last = inputs[2].conversation;
  REQUIRE(last.size() == 2 + 6);
  CHECK(last[3].role == "user");
  CHECK(last[3].content == "With the sum?");
  CHECK(last[4].content.find("end_of_conversation") == std::string::npos);
  CHECK(last[5].content == "A second tutor message in a row"); // context, though not scored
  CHECK(last.back().role == "assistant");
  CHECK(last.back().content == "Well done.");
  // A dialog the student opens (attempted): the first tutor turn follows it and is scored.
  const auto attempted =
    ped_rm_inputs(prompts, "p", {{false, "My attempt", 2}, {true, "Check step 2.", 3}});
  REQUIRE(attempted.size() == 1);
  CHECK(attempted[0].message == 1);
}
