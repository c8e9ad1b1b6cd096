// Loading problem sets, and the errors for bad rows.
#include "classroom/problems.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

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
  CHECK(error_of(broken).find("broken.jsonl:2: not a JSON object") != std::string::npos);
  auto list = write("list.jsonl", "[1, 2]\n");
  CHECK(error_of(list).find(":1: not a JSON object") != std::string::npos);
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
