// Prometheus's text exposition format (see prometheus.hpp).
#include "inspect/prometheus.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <cmath>

namespace pedagogy::prometheus {

void exposition::family(const std::string& name, metric_type type, const std::string& help) {
  for (const auto& f : families_)
    if (f.name == name)
      return;
  PEDAGOGY_CHECK(metric_name(name) == name, "'{}' is not a valid metric name", name);
  families_.push_back({name, type, help, {}});
}

void exposition::sample(const std::string& name, const labels& labels, double value) {
  for (auto& f : families_) {
    if (f.name != name)
      continue;
    std::string line = name;
    if (!labels.empty()) {
      line += '{';
      for (size_t i = 0; i < labels.size(); ++i)
        line += fmt::format("{}{}=\"{}\"", i == 0 ? "" : ",", metric_name(labels[i].first),
                            escape_label(labels[i].second));
      line += '}';
    }
    f.lines.push_back(line + ' ' + format_value(value));
    return;
  }
  PEDAGOGY_CHECK(false, "metric family '{}' was not declared", name);
}

std::string exposition::text() const {
  std::string out;
  for (const auto& f : families_) {
    if (f.lines.empty())
      continue;
    std::string help;
    for (char c : f.help) // HELP escapes backslash and newline only
      help += c == '\\' ? std::string("\\\\") : c == '\n' ? std::string("\\n") : std::string(1, c);
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, help, f.name,
                       f.type == metric_type::counter ? "counter" : "gauge");
    for (const auto& line : f.lines)
      out += line + '\n';
  }
  return out;
}

std::string metric_name(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == ':';
    out += ok ? c : '_';
  }
  if (out.empty() || (out[0] >= '0' && out[0] <= '9'))
    out.insert(out.begin(), '_');
  return out;
}

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value))
    return "NaN";
  if (std::isinf(value))
    return value > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", value); // shortest round-trip representation
}

} // namespace pedagogy::prometheus
