// Line charts of metrics as one SVG picture (`pedagogy plot`): a grid of small charts, each with a
// title, readable axes (a few round ticks, light gridlines) and one line per series; a legend
// names the series when there are several, and every series keeps its colour in every chart.
// Pure text output (strings in, string out, deterministic), so no fonts or libraries are needed
// to write it, and every browser shows it.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pedagogy::plot {

// One line of a chart: a run's values of one metric.
struct series {
  std::string name;                              // the legend's label, e.g. the run folder's name
  std::vector<std::pair<double, double>> points; // (step, value) in step order; NaN/inf skipped
};

// One small chart.
struct chart {
  std::string title;                              // "reward"
  std::vector<series> lines;                      // none, or none with a finite point: "no data"
  std::optional<std::pair<double, double>> range; // a fixed value axis, e.g. {0, 1} for rates
};

struct options {
  int columns = 2; // charts per row
  int smooth = 0;  // over N points: a moving average drawn over lighter raw points; 0 or 1 = off
};

// The charts in a grid under `heading`. A series' colour follows its name's first appearance,
// so a run has the same colour in every chart; the legend appears when there are two names or
// more.
std::string svg(const std::string& heading, const std::vector<chart>& charts,
                const options& opts = {});

// An axis' ticks: 4 to 6 multiples of one step of 1, 2 or 5 x 10^k that cover [lo, hi] (the
// axis then runs from the first tick to the last), or, when `exact`, as near 5 as such steps allow
// inside [lo, hi] (a fixed range, drawn as given). `integer` keeps the step a whole number (steps
// of training; a run of 1 to 3 steps gets a tick per step). lo == hi is widened first.
struct axis {
  double lo = 0, hi = 1;     // the range drawn
  double step = 0.2;         // between ticks
  std::vector<double> ticks; // in increasing order
};
axis nice_axis(double lo, double hi, bool exact = false, bool integer = false);

// A tick's label: fixed notation with as many decimals as `step` needs ("0.2", "40", "3.5"), or
// compact scientific notation for tiny or huge ticks ("1e-06", "2.5e-05", "1e+07"); 0 is "0".
std::string tick_label(double value, double step);

// Each finite point's trailing mean over itself and up to n - 1 finite points before it (fewer at
// the start); points with a NaN or infinite step or value are left out.
std::vector<std::pair<double, double>>
moving_average(const std::vector<std::pair<double, double>>& points, int n);

// `text` made safe inside XML text and attributes: & < > " ' escaped, control characters and
// bytes that are not UTF-8 replaced.
std::string escape(const std::string& text);

} // namespace pedagogy::plot
