// Prometheus's text exposition format (version 0.0.4), written by hand: families declared once
// with HELP and TYPE, every sample of a family together, names and label values escaped as the
// format says. `promtool check metrics` accepts what this writes (tests/cli/cli_inspect.sh).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pedagogy::prometheus {

enum class metric_type { counter, gauge };

using labels = std::vector<std::pair<std::string, std::string>>;

class exposition {
public:
  // Declares a family; a second declaration of the same name is ignored.
  void family(const std::string& name, metric_type type, const std::string& help);
  // One sample of a declared family (a programmer error otherwise).
  void sample(const std::string& name, const labels& labels, double value);
  // The page: families in declaration order; a family without samples is left out.
  std::string text() const;

private:
  struct family_samples {
    std::string name;
    metric_type type = metric_type::gauge;
    std::string help;
    std::vector<std::string> lines;
  };
  std::vector<family_samples> families_;
};

// A valid metric name from any text: characters outside [a-zA-Z0-9_:] become '_', and a leading
// digit gets a '_' before it.
std::string metric_name(const std::string& text);

// A label value with backslash, double quote and newline escaped.
std::string escape_label(const std::string& value);

// A sample value: the shortest text that reads back as the same double; NaN, +Inf, -Inf.
std::string format_value(double value);

} // namespace pedagogy::prometheus
