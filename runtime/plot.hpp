// Line charts of a run's metrics as one SVG picture (`pedagogy plot`): a grid of small charts,
// one per series, each with its title, its value range, its step range and one dot per point.
// Pure text output; no fonts or libraries needed to write it, and every browser shows it.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace pedagogy::plot {

struct series {
  std::string title;                             // "reward"
  std::vector<std::pair<double, double>> points; // (step, value), in step order
};

// The charts side by side, `columns` per row, under `heading`.
std::string svg(const std::string& heading, const std::vector<series>& charts, int columns = 2);

} // namespace pedagogy::plot
