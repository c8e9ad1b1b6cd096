// A small template language for prompts, a subset of Jinja:
//   {{ name }}  {{ m.content }}  {{ m.role | capitalize }}
//   {% if name %} ... {% else %} ... {% endif %}     (also {% if not name %})
//   {% for m in messages %} ... {% endfor %}
//   {# a comment #}
// A tag that ends its line takes the newline with it (Jinja's trim_blocks), so templates can put
// tags on lines of their own; one trailing newline is dropped, as in Jinja. Using a variable the
// context lacks is an error naming the template, the line and the variables that exist; so is
// any syntax error.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pedagogy::classroom {

using template_record = std::map<std::string, std::string>; // e.g. {role, content}
using template_value = std::variant<std::string, bool, std::vector<template_record>>;
using template_context = std::map<std::string, template_value>;

class prompt_template {
public:
  // Throws input_error ("name:line") for syntax errors.
  static prompt_template parse(std::string_view text, std::string name);
  // Throws input_error for an unknown variable or field.
  std::string render(const template_context& context) const;
  const std::string& name() const {
    return name_;
  }

  struct node;

private:
  std::string name_;
  std::vector<std::shared_ptr<node>> body_;
};

} // namespace pedagogy::classroom
