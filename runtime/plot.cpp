// SVG line charts (see plot.hpp).
#include "runtime/plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pedagogy::plot {

namespace {

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string number(double v) {
  return fmt::format("{:.4g}", v);
}

constexpr double chart_w = 360, chart_h = 220, left = 56, right = 12, top = 26, bottom = 30;

std::string chart(const series& s, double x0, double y0) {
  std::string out = fmt::format(R"(<g class="chart" data-title="{}" data-points="{}" )"
                                R"svg(transform="translate({},{})">)svg",
                                escape(s.title), s.points.size(), x0, y0);
  out +=
    fmt::format(R"(<rect width="{}" height="{}" fill="white" stroke="#ccc"/>)", chart_w, chart_h);
  out += fmt::format(R"(<text x="{}" y="17" font-size="13">{}</text>)", left, escape(s.title));
  out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#999"/>)", left,
                     chart_h - bottom, chart_w - right);
  out += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#999"/>)", left, top,
                     chart_h - bottom);
  std::vector<std::pair<double, double>> points;
  for (const auto& p : s.points)
    if (std::isfinite(p.first) && std::isfinite(p.second))
      points.push_back(p);
  if (points.empty()) {
    out += fmt::format(R"(<text x="{}" y="{}" font-size="11" fill="#777">no values</text>)",
                       left + 10, chart_h / 2);
    return out + "</g>";
  }
  double xmin = points.front().first, xmax = xmin, ymin = points.front().second, ymax = ymin;
  for (const auto& [x, y] : points) {
    xmin = std::min(xmin, x);
    xmax = std::max(xmax, x);
    ymin = std::min(ymin, y);
    ymax = std::max(ymax, y);
  }
  if (xmax == xmin)
    xmax = xmin + 1;
  if (ymax == ymin) {
    ymax += 0.5;
    ymin -= 0.5;
  }
  auto px = [&](double x) {
    return left + (x - xmin) / (xmax - xmin) * (chart_w - left - right);
  };
  auto py = [&](double y) {
    return chart_h - bottom - (y - ymin) / (ymax - ymin) * (chart_h - top - bottom);
  };
  out += fmt::format(R"(<text x="4" y="{}" font-size="11" fill="#555">{}</text>)", top + 4,
                     number(ymax));
  out += fmt::format(R"(<text x="4" y="{}" font-size="11" fill="#555">{}</text>)", chart_h - bottom,
                     number(ymin));
  out += fmt::format(R"(<text x="{}" y="{}" font-size="11" fill="#555">step {}</text>)", left,
                     chart_h - 10, number(xmin + 1));
  out += fmt::format(R"(<text x="{}" y="{}" font-size="11" fill="#555" text-anchor="end">)"
                     R"(step {}</text>)",
                     chart_w - right, chart_h - 10, number(xmax + 1));
  std::string line;
  for (const auto& [x, y] : points)
    line += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
  out +=
    fmt::format(R"(<polyline fill="none" stroke="#2a6fdb" stroke-width="1.5" points="{}"/>)", line);
  for (const auto& [x, y] : points)
    out += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="#2a6fdb"/>)", px(x), py(y));
  return out + "</g>";
}

} // namespace

std::string svg(const std::string& heading, const std::vector<series>& charts, int columns) {
  columns = std::max(1, columns);
  const auto rows = (static_cast<int>(charts.size()) + columns - 1) / columns;
  const double gap = 12, head = 36;
  const double width = columns * chart_w + (columns + 1) * gap;
  const double height = head + rows * (chart_h + gap) + gap;
  std::string out = fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" )"
                                R"(height="{}" viewBox="0 0 {} {}" font-family="sans-serif">)"
                                "\n",
                                width, height, width, height);
  out += fmt::format(R"(<rect width="100%" height="100%" fill="#fafafa"/>)"
                     "\n"
                     R"(<text x="{}" y="24" font-size="16">{}</text>)"
                     "\n",
                     gap, escape(heading));
  for (size_t i = 0; i < charts.size(); ++i) {
    const auto col = static_cast<double>(static_cast<int>(i) % columns);
    const auto row = static_cast<double>(static_cast<int>(i) / columns);
    out += chart(charts[i], gap + col * (chart_w + gap), head + row * (chart_h + gap)) + "\n";
  }
  return out + "</svg>\n";
}

} // namespace pedagogy::plot
