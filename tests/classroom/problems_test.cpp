// Loading problem sets, and the errors for bad rows.
#include "classroom/problems.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>

using namespace pedagogy::classroom;
namespace fs = std::filesystem;

namespace {

fs::path write(const std::string& name, const std::string& text) {
  auto path = fs::temp_directory_path() / ("pedagogy_problems_" + name);
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const fs::path& path, problem_fields fields = {}) {
  try {
    load_problems(path, fields);
  } catch (const pedagogy::input_error& e) {
    return e.what();
  }
  FAIL("no error");
  return {};
}

} // namespace

TEST_CASE("problems load with their line numbers, numeric answers become text") {
  auto path =
    write("ok.jsonl", "{\"problem\": \"2+2?\", \"answer\": \"4\"}\n\n"
                      "{\"problem\": \"Half of 7?\", \"answer\": 3.5, \"source\": \"x\"}\n");
  auto problems = load_problems(path, {});
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].text == "2+2?");
  CHECK(problems[1].answer == "3.5");
  CHECK(problems[1].line == 3); // the blank line is skipped but counted
  CHECK(load_problems(path, {}, /*max_problems=*/1).size() == 1);
  fs::remove(path);
}

TEST_CASE("field names are configurable") {
  auto path = write("fields.jsonl", "{\"question\": \"3*3?\", \"solution\": \"9\"}\n");
  auto problems = load_problems(path, {"question", "solution"});
  CHECK(problems.at(0).answer == "9");
  CHECK(error_of(path).find("no field 'problem'") != std::string::npos);
  fs::remove(path);
}

TEST_CASE("a bad row is reported with its line and nothing is half-loaded") {
  auto broken =
    write("broken.jsonl", "{\"problem\": \"a\", \"answer\": \"1\"}\n{\"problem\": \"b\", \n");
  CHECK(error_of(broken).find("broken.jsonl:2: not valid JSON") != std::string::npos);
  auto list = write("list.jsonl", "[1, 2]\n");
  CHECK(error_of(list).find(":1: the row is an array, not an object") != std::string::npos);
  auto nested = write("nested.jsonl", "{\"problem\": \"a\", \"answer\": [1]}\n");
  CHECK(error_of(nested).find("neither text nor a number") != std::string::npos);
  auto empty = write("empty.jsonl", "{\"problem\": \" \", \"answer\": \"1\"}\n");
  CHECK(error_of(empty).find("empty problem or answer") != std::string::npos);
  auto nothing = write("nothing.jsonl", "\n\n");
  CHECK(error_of(nothing).find("holds no problems") != std::string::npos);
  CHECK(error_of("/nonexistent/problems.jsonl").find("cannot read") != std::string::npos);
  for (const auto& p : {broken, list, nested, empty, nothing})
    fs::remove(p);
}

TEST_CASE("numeric answers keep their digits exactly as written") {
  auto path = write("digits.jsonl",
                    "{\"problem\": \"p\", \"answer\": 123456789012345678901234567890}\n"
                    "{\"problem\": \"p\", \"answer\": 0.1}\n"
                    "{\"problem\": \"p\", \"answer\": 1e5}\n"
                    "{\"problem\": \"p\", \"answer\": -7}\n"
                    "{\"problem\": \"p\", \"answer\": 18446744073709551615}\n"
                    "{\"problem\": \"p\", \"answer\": 1.50}\n"
                    "{\"problem\": \"p\", \"nested\": {\"answer\": 1}, \"answer\": 2.0E-3}\n");
  auto problems = load_problems(path, {});
  REQUIRE(problems.size() == 7);
  CHECK(problems[0].answer == "123456789012345678901234567890");
  CHECK(problems[1].answer == "0.1");
  CHECK(problems[2].answer == "1e5");
  CHECK(problems[3].answer == "-7");
  CHECK(problems[4].answer == "18446744073709551615");
  CHECK(problems[5].answer == "1.50");
  CHECK(problems[6].answer == "2.0E-3");
  fs::remove(path);
}

TEST_CASE("max_problems takes a seeded sample of the rows, kept in file order") {
  std::string text;
  for (int i = 0; i < 100; ++i)
    text += fmt::format("{{\"problem\": \"p{}\", \"answer\": \"{}\"}}\n", i, i);
  auto path = write("sample.jsonl", text);
  auto sample = load_problems(path, {}, /*max_problems=*/10, /*seed=*/42);
  REQUIRE(sample.size() == 10);
  for (size_t i = 1; i < sample.size(); ++i)
    CHECK(sample[i - 1].line < sample[i].line);
  CHECK(sample.back().line > 10); // not simply the first ten rows
  auto again = load_problems(path, {}, 10, 42);
  auto other = load_problems(path, {}, 10, 43);
  auto lines = [](const std::vector<problem>& ps) {
    std::vector<int64_t> out;
    for (const auto& p : ps)
      out.push_back(p.line);
    return out;
  };
  CHECK(lines(again) == lines(sample));
  CHECK(lines(other) != lines(sample));
  CHECK(load_problems(path, {}, 100, 42).size() == 100);
  CHECK(load_problems(path, {}, 1000, 42).size() == 100);
  fs::remove(path);
}

TEST_CASE("a bad row says what is wrong with it") {
  auto utf8 = write("utf8.jsonl", "{\"problem\": \"caf\xC3\x28\", \"answer\": \"1\"}\n");
  CHECK(error_of(utf8).find("utf8.jsonl:1: invalid UTF-8 at byte 17") != std::string::npos);
  auto number = write("number.jsonl", "42\n");
  CHECK(error_of(number).find(":1: the row is a number, not an object") != std::string::npos);
  auto missing = write("missing.jsonl", "{\"problem\": \"a\"}\n");
  CHECK(error_of(missing).find(":1: no field 'answer'") != std::string::npos);
  auto trailing = write("trailing.jsonl", "{\"problem\": \"a\", \"answer\": 1} x\n");
  CHECK(error_of(trailing).find(":1: not valid JSON") != std::string::npos);
  auto overlong = write("overlong.jsonl", "{\"problem\": \"a\xC0\xAF\", \"answer\": \"1\"}\n");
  CHECK(error_of(overlong).find(":1: invalid UTF-8 at byte 15") != std::string::npos);
  auto surrogate = write("surrogate.jsonl", "{\"problem\": \"\xED\xA0\x80\", \"answer\": 1}\n");
  CHECK(error_of(surrogate).find(":1: invalid UTF-8 at byte 14") != std::string::npos);
  auto cut = write("cut.jsonl", "{\"problem\": \"a\", \"answer\": 1} \xE2\x82\n");
  CHECK(error_of(cut).find(":1: invalid UTF-8 at byte 31") != std::string::npos);
  auto unicode =
    write("unicode.jsonl", "{\"problem\": \"caf\u00e9 \xE6\x95\xB0 \xF0\x9F\x98\x80\", "
                           "\"answer\": \"\xC3\xA9\"}\r\n");
  CHECK(load_problems(unicode, {}).at(0).answer == "\xC3\xA9");
  for (const auto& p : {utf8, number, missing, trailing, overlong, surrogate, cut, unicode})
    fs::remove(p);
}

TEST_CASE("GSM8K solutions given as answers are graded by the text after the last ####") {
  const auto log_path = fs::temp_directory_path() / "pedagogy_problems_gsm8k.log";
  fs::remove(log_path);
  pedagogy::log::options log_options;
  log_options.file = log_path.string();
  log_options.rank = 0;
  pedagogy::log::setup(log_options);
  auto path = write("gsm8k.jsonl",
                    "{\"problem\": \"p\", \"answer\": \"She sold 48/2 = <<48/2=24>>24 clips.\\n"
                    "In all 48+24 = <<48+24=72>>72.\\n#### 72\"}\n"
                    "{\"problem\": \"p\", \"answer\": \"#### 5 #### 1,234,567 \"}\n"
                    "{\"problem\": \"p\", \"answer\": \"-3\"}\n");
  auto problems = load_problems(path, {});
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].answer == "72");
  CHECK(problems[1].answer == "1234567");
  CHECK(problems[2].answer == "-3");
  pedagogy::log::flush();
  std::ifstream in(log_path);
  const std::string log_text{std::istreambuf_iterator<char>(in), {}};
  const std::string said = fmt::format(
    "2 answers in {} were GSM8K solutions; graded against the text after ####", path.string());
  CHECK(log_text.find(said) != std::string::npos);
  CHECK(log_text.find(said) == log_text.rfind(said)); // said once per file
  auto empty = write("gsm8k_empty.jsonl", "{\"problem\": \"p\", \"answer\": \"work #### \"}\n");
  CHECK(error_of(empty).find("gsm8k_empty.jsonl:1: nothing after '####'") != std::string::npos);
  pedagogy::log::setup({});
  for (const auto& p : {path, empty, log_path})
    fs::remove(p);
}
