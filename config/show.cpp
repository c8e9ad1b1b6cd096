// Prints the config as TOML in schema order, in a form that loads back to an equal config.
#include "config/config.hpp"
#include "config/fields.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <type_traits>

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
  void field(std::string_view name, T& value, const knob& k) {
    if constexpr (std::is_same_v<T, std::string>)
      if (k.secret && !value.empty()) {
        *out += fmt::format("{} = \"\" # redacted: give it again as {}.{}=... or in the "
                            "environment\n",
                            name, path, name);
        return;
      }
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

// "table.key" -> value text, from what toml_writer wrote: one "key = value" per line, each
// table under its "[a.b]" header.
std::map<std::string, std::string> flatten(std::string_view text) {
  std::map<std::string, std::string> out;
  std::string table;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    if (line.size() > 2 && line.front() == '[' && line.back() == ']') {
      table = std::string(line.substr(1, line.size() - 2)) + ".";
      continue;
    }
    if (const size_t eq = line.find(" = "); eq != std::string_view::npos)
      out[table + std::string(line.substr(0, eq))] = std::string(line.substr(eq + 3));
  }
  return out;
}

} // namespace

std::vector<std::string> differences(std::string_view here, std::string_view there) {
  const auto a = flatten(here);
  const auto b = flatten(there);
  std::vector<std::string> out;
  auto value = [](const std::map<std::string, std::string>& m, const std::string& key) {
    const auto it = m.find(key);
    return it == m.end() ? std::string("(absent)") : it->second;
  };
  std::set<std::string> keys;
  for (const auto& [key, v] : a)
    keys.insert(key);
  for (const auto& [key, v] : b)
    keys.insert(key);
  for (const auto& key : keys)
    if (value(a, key) != value(b, key))
      out.push_back(fmt::format("{}: {} vs {}", key, value(a, key), value(b, key)));
  return out;
}

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
