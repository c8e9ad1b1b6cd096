// The prompt template language: substitution, conditions, loops, whitespace, and its errors.
#include "classroom/prompt_template.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>

using namespace pedagogy::classroom;
using pedagogy::input_error;

namespace {

std::string render(std::string_view text, const template_context& context) {
  return prompt_template::parse(text, "t.txt").render(context);
}

input_error error_of(std::string_view text, const template_context& context = {}) {
  try {
    render(text, context);
  } catch (const input_error& e) {
    return e;
  }
  FAIL("no error");
  return input_error("", "");
}

} // namespace

TEST_CASE("variables, conditions with else and not, and comments") {
  const std::string t =
    "Hello{% if name %} {{ name }}{% else %} student{% endif %}!{# not shown #}";
  CHECK(render(t, {{"name", std::string("Alex")}}) == "Hello Alex!");
  CHECK(render(t, {{"name", std::string("")}}) == "Hello student!");
  CHECK(render("{% if not thinking %}plain{% endif %}", {{"thinking", false}}) == "plain");
  CHECK(render("{% if not thinking %}plain{% endif %}", {{"thinking", true}}) == "");
  CHECK(render("{{ flag }}", {{"flag", true}}) == "true");
  CHECK(render("a { b } c", {}) == "a { b } c"); // lone braces are text
}

TEST_CASE("loops over messages, with the capitalize filter the judges use") {
  std::vector<template_record> messages = {{{"role", "teacher"}, {"content", "What is 3x?"}},
                                           {{"role", "student"}, {"content", "9?"}}};
  const std::string t = "==BEGIN==\n"
                        "{% for m in messages %}\n"
                        "- {{ m.role | capitalize }}: {{ m.content }}\n"
                        "{% endfor %}\n"
                        "==END==";
  CHECK(render(t, {{"messages", messages}}) ==
        "==BEGIN==\n- Teacher: What is 3x?\n- Student: 9?\n==END==");
  CHECK(render("{% if messages %}some{% endif %}",
               {{"messages", std::vector<template_record>{}}}) == "");
}

TEST_CASE("tags on lines of their own leave no blank lines (trim_blocks)") {
  const std::string t = "A\n{% if x %}\nB\n{% endif %}\nC";
  CHECK(render(t, {{"x", true}}) == "A\nB\nC");
  CHECK(render(t, {{"x", false}}) == "A\nC");
}

TEST_CASE("an unknown variable names the template, the line and what exists") {
  auto e = error_of("line one\n{{ problm }}", {{"problem", std::string("2+2")}});
  CHECK(e.where() == "t.txt:2");
  CHECK(e.problem() == "unknown variable 'problm'");
  CHECK(e.hint().find("problem") != std::string::npos);
  auto field = error_of("{% for m in messages %}{{ m.text }}{% endfor %}",
                        {{"messages", std::vector<template_record>{{{"role", "x"}}}}});
  CHECK(field.problem() == "'m' has no field 'text'");
  CHECK(error_of("{{ m.role }}").problem() == "'m' is not a loop variable here");
}

TEST_CASE("syntax errors are reported with their line") {
  CHECK(error_of("a\nb {{ name").problem() == "'{{' is never closed");
  CHECK(error_of("a\nb {{ name").where() == "t.txt:2");
  CHECK(error_of("{% if x %}open").problem() == "'{% endif %}' is missing");
  CHECK(error_of("x\n{% endfor %}").problem() == "unexpected '{% endfor %}'");
  CHECK(error_of("{{ x | upper }}").problem() == "unknown filter 'upper'");
  CHECK(error_of("{% for m messages %}{% endfor %}").problem() == "malformed for");
  CHECK(error_of("{% while x %}").hint().find("known tags") != std::string::npos);
}

TEST_CASE("one trailing newline is dropped, as Jinja does, others stay") {
  CHECK(render("Hello {{ name }}\n", {{"name", std::string("Ada")}}) == "Hello Ada");
  CHECK(render("Hello\n\n", {}) == "Hello\n");
  CHECK(render("Hello", {}) == "Hello");
}
