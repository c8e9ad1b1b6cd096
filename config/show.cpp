// Prints the config as TOML in schema order, in a form that loads back to an equal config.
#include "config/config.hpp"
#include "config/fields.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <functional>

namespace pedagogy::config {

namespace {

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_quoted(std::string_view text) {
  std::string out = "\"";
  for (unsigned char ch : text) {
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (ch < 0x20 || ch == 0x7f)
          out += fmt::format("\\u{:04X}", ch);
        else
          out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

// The shortest text that parses back to the same double, always spelled as a TOML float.
std::string float_text(double value) {
  if (std::isnan(value))
    return "nan";
  if (std::isinf(value))
    return value > 0 ? "inf" : "-inf";
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  std::string text(buffer, end);
  if (text.find_first_of(".eE") == std::string::npos)
    text += ".0";
  return text;
}

std::string value_text(bool value) {
  return value ? "true" : "false";
}
std::string value_text(int64_t value) {
  return std::to_string(value);
}
std::string value_text(double value) {
  return float_text(value);
}
std::string value_text(const std::string& value) {
  return toml_quoted(value);
}
template <config_enum E>
std::string value_text(E value) {
  return toml_quoted(to_string(value));
}
template <class T>
std::string value_text(const std::vector<T>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i)
    out += (i == 0 ? "" : ", ") + value_text(values[i]);
  return out + "]";
}

// Scalars of a table are written under its header; nested tables follow as [a.b] sections.
struct toml_writer {
  std::string path;
  std::string* out;
  std::vector<std::pair<std::string, std::function<void()>>> nested;

  template <class T>
  void field(std::string_view name, T& value, const knob&) {
    *out += fmt::format("{} = {}\n", name, value_text(value));
  }

  template <class S>
  void table(std::string_view name, S& sub) {
    std::string sub_path = path.empty() ? std::string(name) : path + "." + std::string(name);
    nested.emplace_back(sub_path, [this, sub_path, &sub] {
      *out += fmt::format("\n[{}]\n", sub_path);
      toml_writer inner{sub_path, out, {}};
      describe(inner, sub);
      inner.flush_nested();
    });
  }

  void flush_nested() {
    for (auto& [name, write] : nested)
      write();
    nested.clear();
  }
};

} // namespace

std::string to_toml(const config& cfg) {
  config copy = cfg;
  std::string out;
  toml_writer writer{"", &out, {}};
  describe(writer, copy);
  writer.flush_nested();
  if (!out.empty() && out.front() == '\n')
    out.erase(0, 1);
  return out;
}

} // namespace pedagogy::config
