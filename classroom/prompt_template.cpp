// Parsing and rendering prompt templates (see prompt_template.hpp).
#include "classroom/prompt_template.hpp"

#include "classroom/text.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <cctype>

namespace pedagogy::classroom {

struct prompt_template::node {
  enum class kind { text, variable, condition, loop } type = kind::text;
  int line = 1;
  std::string text;                        // text: the literal; variable: "name" or "item.field"
  std::string filter;                      // variable: "" or "capitalize"
  bool negated = false;                    // condition: {% if not name %}
  std::string loop_item;                   // loop: "m" in {% for m in messages %}
  std::vector<std::shared_ptr<node>> body; // condition: then-branch; loop: body
  std::vector<std::shared_ptr<node>> otherwise; // condition: else-branch
};

namespace {

using node = prompt_template::node;
using nodes = std::vector<std::shared_ptr<node>>;

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::string current;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!current.empty())
        out.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty())
    out.push_back(std::move(current));
  return out;
}

class parser {
public:
  parser(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  nodes parse_block(const std::vector<std::string>& terminators, std::string* ended_by) {
    nodes out;
    while (pos_ < text_.size()) {
      const size_t tag = text_.find('{', pos_);
      if (tag == std::string_view::npos || tag + 1 >= text_.size()) {
        add_text(out, text_.substr(pos_));
        pos_ = text_.size();
        break;
      }
      const char kind = text_[tag + 1];
      if (kind != '{' && kind != '%' && kind != '#') {
        add_text(out, text_.substr(pos_, tag + 1 - pos_));
        pos_ = tag + 1;
        continue;
      }
      add_text(out, text_.substr(pos_, tag - pos_));
      const int line = line_at(tag);
      const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
      const size_t end = text_.find(close, tag + 2);
      if (end == std::string_view::npos)
        fail(line, fmt::format("'{}{}' is never closed", '{', kind),
             fmt::format("close it with '{}'", close));
      const std::string inside = trim_ascii(text_.substr(tag + 2, end - tag - 2));
      pos_ = end + 2;
      if (kind == '#') {
        skip_newline();
        continue;
      }
      if (kind == '{') {
        out.push_back(variable(inside, line));
        continue;
      }
      skip_newline(); // trim_blocks
      auto w = words(inside);
      if (w.empty())
        fail(line, "empty tag '{% %}'", "write if, else, endif, for or endfor");
      for (const auto& t : terminators) {
        if (w[0] == t) {
          *ended_by = t;
          return out;
        }
      }
      if (w[0] == "if")
        out.push_back(condition(w, line));
      else if (w[0] == "for")
        out.push_back(loop(w, line));
      else
        fail(line, fmt::format("unexpected '{{% {} %}}'", inside),
             w[0] == "else" || w[0] == "endif" || w[0] == "endfor"
               ? "it closes nothing that is open"
               : "known tags: if, else, endif, for, endfor");
    }
    if (!terminators.empty())
      fail(line_at(text_.size()), fmt::format("'{{% {} %}}' is missing", terminators.back()),
           "every if needs an endif, every for an endfor");
    return out;
  }

private:
  [[noreturn]] void fail(int line, const std::string& problem, const std::string& hint) const {
    throw input_error(fmt::format("{}:{}", name_, line), problem, hint);
  }

  int line_at(size_t offset) const {
    int line = 1;
    for (size_t i = 0; i < offset && i < text_.size(); ++i)
      line += text_[i] == '\n';
    return line;
  }

  void skip_newline() {
    if (pos_ < text_.size() && text_[pos_] == '\n')
      ++pos_;
  }

  static void add_text(nodes& out, std::string_view text) {
    if (text.empty())
      return;
    auto n = std::make_shared<node>();
    n->text = std::string(text);
    out.push_back(std::move(n));
  }

  std::shared_ptr<node> variable(const std::string& inside, int line) {
    auto n = std::make_shared<node>();
    n->type = node::kind::variable;
    n->line = line;
    auto bar = inside.find('|');
    n->text = trim_ascii(inside.substr(0, bar));
    if (bar != std::string::npos) {
      n->filter = trim_ascii(inside.substr(bar + 1));
      if (n->filter != "capitalize")
        fail(line, fmt::format("unknown filter '{}'", n->filter), "the only filter is capitalize");
    }
    if (n->text.empty() || words(n->text).size() != 1)
      fail(line, fmt::format("'{{{{ {} }}}}' is not a variable", inside),
           "write {{ name }} or {{ m.field }}");
    return n;
  }

  std::shared_ptr<node> condition(const std::vector<std::string>& w, int line) {
    auto n = std::make_shared<node>();
    n->type = node::kind::condition;
    n->line = line;
    n->negated = w.size() == 3 && w[1] == "not";
    if (w.size() != (n->negated ? 3u : 2u))
      fail(line, "malformed if", "write {% if name %} or {% if not name %}");
    n->text = w.back();
    std::string ended;
    n->body = parse_block({"else", "endif"}, &ended);
    if (ended == "else")
      n->otherwise = parse_block({"endif"}, &ended);
    return n;
  }

  std::shared_ptr<node> loop(const std::vector<std::string>& w, int line) {
    if (w.size() != 4 || w[2] != "in")
      fail(line, "malformed for", "write {% for m in messages %}");
    auto n = std::make_shared<node>();
    n->type = node::kind::loop;
    n->line = line;
    n->loop_item = w[1];
    n->text = w[3];
    std::string ended;
    n->body = parse_block({"endfor"}, &ended);
    return n;
  }

  std::string_view text_;
  const std::string& name_;
  size_t pos_ = 0;
};

std::string known_names(const template_context& context) {
  std::string out;
  for (const auto& [name, value] : context)
    out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "(none)" : out;
}

class renderer {
public:
  renderer(const template_context& context, const std::string& name)
    : context_(context), name_(name) {}

  void render(const nodes& body, std::string& out) {
    for (const auto& n : body) {
      switch (n->type) {
        case node::kind::text:
          out += n->text;
          break;
        case node::kind::variable: {
          std::string value = lookup_text(*n);
          if (n->filter == "capitalize" && !value.empty())
            value[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(value[0])));
          out += value;
          break;
        }
        case node::kind::condition:
          render(truthy(*n) != n->negated ? n->body : n->otherwise, out);
          break;
        case node::kind::loop: {
          const auto& list = lookup(*n, n->text);
          const auto* records = std::get_if<std::vector<template_record>>(&list);
          if (records == nullptr)
            fail(*n, fmt::format("'{}' is not a list", n->text), "loop over a list of messages");
          for (const auto& record : *records) {
            item_ = {n->loop_item, &record};
            render(n->body, out);
          }
          item_ = {};
          break;
        }
      }
    }
  }

private:
  [[noreturn]] void fail(const node& n, const std::string& problem, const std::string& hint) const {
    throw input_error(fmt::format("{}:{}", name_, n.line), problem, hint);
  }

  const template_value& lookup(const node& n, const std::string& name) const {
    auto it = context_.find(name);
    if (it == context_.end())
      fail(n, fmt::format("unknown variable '{}'", name),
           fmt::format("this template is given: {}", known_names(context_)));
    return it->second;
  }

  std::string lookup_text(const node& n) const {
    if (auto dot = n.text.find('.'); dot != std::string::npos) {
      const std::string item = n.text.substr(0, dot);
      const std::string field = n.text.substr(dot + 1);
      if (item != item_.first || item_.second == nullptr)
        fail(n, fmt::format("'{}' is not a loop variable here", item),
             "use it inside its for loop");
      auto it = item_.second->find(field);
      if (it == item_.second->end())
        fail(n, fmt::format("'{}' has no field '{}'", item, field),
             "messages have role and content");
      return it->second;
    }
    const auto& value = lookup(n, n.text);
    if (const auto* text = std::get_if<std::string>(&value))
      return *text;
    if (const auto* flag = std::get_if<bool>(&value))
      return *flag ? "true" : "false";
    fail(n, fmt::format("'{}' is a list", n.text), "loop over it with {% for %}");
  }

  bool truthy(const node& n) const {
    const auto& value = lookup(n, n.text);
    if (const auto* text = std::get_if<std::string>(&value))
      return !text->empty();
    if (const auto* flag = std::get_if<bool>(&value))
      return *flag;
    return !std::get<std::vector<template_record>>(value).empty();
  }

  const template_context& context_;
  const std::string& name_;
  std::pair<std::string, const template_record*> item_{"", nullptr};
};

} // namespace

prompt_template prompt_template::parse(std::string_view text, std::string name) {
  prompt_template t;
  t.name_ = std::move(name);
  parser p(text, t.name_);
  std::string ended;
  t.body_ = p.parse_block({}, &ended);
  return t;
}

std::string prompt_template::render(const template_context& context) const {
  std::string out;
  renderer(context, name_).render(body_, out);
  if (!out.empty() && out.back() == '\n')
    out.pop_back(); // as Jinja does by default (keep_trailing_newline=False)
  return out;
}

} // namespace pedagogy::classroom
