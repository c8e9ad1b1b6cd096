// SVG line charts (see plot.hpp).
#include "inspect/plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace pedagogy::plot {

namespace {

using point = std::pair<double, double>;

bool finite(const point& p) {
  return std::isfinite(p.first) && std::isfinite(p.second);
}

// Tableau's ten colours: told apart by most eyes, also when printed.
constexpr const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// Sizes in pixels. Text is sized by estimate (no fonts are read): a digit of sans-serif is about
// 0.56 em wide, so `char_w` at 11 px leaves room to spare.
constexpr double chart_w = 360, chart_h = 236, top = 38, bottom = 40, right = 16;
constexpr double char_w = 6.5, gap = 14, heading_h = 40, legend_row_h = 20;
// Above this many points a series is a line without dots (dots would only blur it).
constexpr size_t max_dots = 200;

struct frame {
  double left; // the plot area's left edge (after the value labels)
  axis x, y;   // what is drawn
  double px(double v) const {
    return left + (v - x.lo) / (x.hi - x.lo) * (chart_w - left - right);
  }
  double py(double v) const {
    v = std::clamp(v, y.lo, y.hi); // a fixed range cuts off what lies outside it
    return chart_h - bottom - (v - y.lo) / (y.hi - y.lo) * (chart_h - top - bottom);
  }
};

std::string polyline(const frame& f, const std::vector<point>& points, const char* colour,
                     double width, double opacity) {
  std::string coords;
  for (const auto& [x, y] : points)
    coords += fmt::format("{:.1f},{:.1f} ", f.px(x), f.py(y));
  if (!coords.empty())
    coords.pop_back();
  return fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="{}" stroke-opacity="{}" )"
                     R"(stroke-linejoin="round" points="{}"/>)",
                     colour, width, opacity, coords);
}

std::string dots(const frame& f, const std::vector<point>& points, const char* colour,
                 double radius, double opacity) {
  if (points.size() > max_dots)
    return {};
  std::string out;
  for (const auto& [x, y] : points)
    out += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="{}" fill="{}" fill-opacity="{}"/>)",
                       f.px(x), f.py(y), radius, colour, opacity);
  return out;
}

// "0.50" -> "0.5", "1.0" -> "1", "20" -> "20".
std::string without_trailing_zeros(std::string number) {
  if (number.find('.') == std::string::npos)
    return number;
  while (number.back() == '0')
    number.pop_back();
  if (number.back() == '.')
    number.pop_back();
  return number;
}

// The axes, gridlines and tick labels of a chart whose data lie in the frame.
std::string axes(const frame& f) {
  const double x0 = f.left, x1 = chart_w - right, y0 = chart_h - bottom, y1 = top;
  std::string out;
  for (double t : f.y.ticks) {
    out += fmt::format(R"(<line x1="{0:.1f}" y1="{2:.1f}" x2="{1:.1f}" y2="{2:.1f}" )"
                       R"(stroke="#e6e6e6"/>)",
                       x0, x1, f.py(t));
    out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" fill="#555" )"
                       R"(text-anchor="end">{}</text>)",
                       x0 - 6, f.py(t) + 4, tick_label(t, f.y.step));
  }
  for (double t : f.x.ticks) {
    out += fmt::format(R"(<line x1="{0:.1f}" y1="{1:.1f}" x2="{0:.1f}" y2="{2:.1f}" )"
                       R"(stroke="#e6e6e6"/>)",
                       f.px(t), y1, y0);
    out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" fill="#555" )"
                       R"(text-anchor="middle">{}</text>)",
                       f.px(t), y0 + 15, tick_label(t, f.x.step));
  }
  out += fmt::format(R"(<line x1="{0:.1f}" y1="{1:.1f}" x2="{2:.1f}" y2="{1:.1f}" stroke="#999"/>)",
                     x0, y0, x1);
  out += fmt::format(R"(<line x1="{0:.1f}" y1="{1:.1f}" x2="{0:.1f}" y2="{2:.1f}" stroke="#999"/>)",
                     x0, y1, y0);
  out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" fill="#777" )"
                     R"(text-anchor="middle">step</text>)",
                     (x0 + x1) / 2, chart_h - 6);
  return out;
}

std::string draw_chart(const chart& c, const std::vector<std::string>& names, const options& opts,
                       double at_x, double at_y) {
  std::string out =
    fmt::format(R"svg(<g class="chart" data-title="{}" transform="translate({},{})">)svg",
                escape(c.title), at_x, at_y);
  out += fmt::format(R"(<rect width="{}" height="{}" fill="white" stroke="#d0d0d0"/>)", chart_w,
                     chart_h);
  out += fmt::format(R"(<text x="10" y="20" font-size="13" font-weight="bold" fill="#222">)"
                     R"({}</text>)",
                     escape(c.title));
  std::vector<std::vector<point>> kept;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  bool whole_steps = true;
  for (const auto& s : c.lines) {
    kept.emplace_back();
    for (const auto& p : s.points)
      if (finite(p)) {
        kept.back().push_back(p);
        xmin = std::min(xmin, p.first);
        xmax = std::max(xmax, p.first);
        ymin = std::min(ymin, p.second);
        ymax = std::max(ymax, p.second);
        whole_steps = whole_steps && p.first == std::round(p.first);
      }
  }
  if (xmin > xmax) {
    out += fmt::format(R"(<text x="{}" y="{}" font-size="12" fill="#888" )"
                       R"(text-anchor="middle">no data</text>)",
                       chart_w / 2, chart_h / 2);
    return out + "</g>";
  }
  frame f;
  f.x = nice_axis(xmin, xmax, /*exact=*/false, /*integer=*/whole_steps);
  f.y =
    c.range ? nice_axis(c.range->first, c.range->second, /*exact=*/true) : nice_axis(ymin, ymax);
  size_t widest = 1;
  for (double t : f.y.ticks)
    widest = std::max(widest, tick_label(t, f.y.step).size());
  f.left = std::max(36.0, 14 + char_w * static_cast<double>(widest));
  out += axes(f);
  const bool smooth = opts.smooth > 1;
  for (size_t i = 0; i < c.lines.size(); ++i) {
    const auto& s = c.lines[i];
    const auto index = std::find(names.begin(), names.end(), s.name) - names.begin();
    const char* colour = palette[static_cast<size_t>(index) % std::size(palette)];
    out += fmt::format(R"(<g class="series" data-series="{}" data-points="{}">)", escape(s.name),
                       kept[i].size());
    if (smooth) {
      out += polyline(f, kept[i], colour, 1, 0.35) + dots(f, kept[i], colour, 2.5, 0.45);
      out += polyline(f, moving_average(kept[i], opts.smooth), colour, 2, 1);
    } else {
      out += polyline(f, kept[i], colour, 1.5, 1) + dots(f, kept[i], colour, 2.5, 1);
    }
    out += "</g>";
  }
  return out + "</g>";
}

// The legend's entries, wrapped into rows that fit `width`; returns its height.
double legend(const std::vector<std::string>& names, double width, double at_y, std::string& out) {
  if (names.size() < 2)
    return 0;
  double x = gap, y = at_y;
  for (size_t i = 0; i < names.size(); ++i) {
    const double w = 34 + 7 * static_cast<double>(names[i].size()) + 18;
    if (x > gap && x + w > width - gap) {
      x = gap;
      y += legend_row_h;
    }
    const char* colour = palette[i % std::size(palette)];
    out += fmt::format(R"(<g class="legend-entry"><line x1="{0}" y1="{1}" x2="{2}" y2="{1}" )"
                       R"(stroke="{3}" stroke-width="3"/><circle cx="{4}" cy="{1}" r="3" )"
                       R"(fill="{3}"/><text x="{5}" y="{6}" font-size="12" fill="#222">{7}</text>)"
                       "</g>\n",
                       x, y, x + 24, colour, x + 12, x + 32, y + 4, escape(names[i]));
    x += w;
  }
  return y - at_y + legend_row_h;
}

} // namespace

axis nice_axis(double lo, double hi, bool exact, bool integer) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (lo > hi)
    std::swap(lo, hi);
  if (lo == hi) { // one value: a range around it, so that it sits in the middle
    const double d = integer ? 1 : (lo == 0 ? 1 : std::abs(lo) * 0.1);
    lo -= d;
    hi += d;
  }
  // The 1-2-5 step whose ticks number closest to 5; among equals, the one whose ticks cover the
  // data most tightly, then the larger step.
  constexpr double eps = 1e-9;
  const int k0 = static_cast<int>(std::floor(std::log10(hi - lo)));
  axis best;
  double best_score = INFINITY, best_waste = INFINITY;
  for (int k = k0 - 2; k <= k0 + 1; ++k)
    for (double m : {1.0, 2.0, 5.0}) {
      const double step = m * std::pow(10.0, k);
      if (integer && step < 1)
        continue;
      const double first = exact ? std::ceil(lo / step - eps) : std::floor(lo / step + eps);
      const double last = exact ? std::floor(hi / step + eps) : std::ceil(hi / step - eps);
      const double n = last - first + 1;
      const double score = std::abs(n - 5);
      const double waste = std::abs((last - first) * step - (hi - lo)) / (hi - lo);
      if (score < best_score || (score == best_score && waste <= best_waste)) {
        best_score = score;
        best_waste = waste;
        best.step = step;
        best.ticks.clear();
        for (double i = first; i <= last; ++i)
          best.ticks.push_back(i * step);
        best.lo = exact ? lo : first * step;
        best.hi = exact ? hi : last * step;
      }
    }
  // No 1-2-5 step covers some ranges with 4 to 6 ticks (7 are too many, 3 too few); then one more
  // step of axis on the side where the data come nearer to the end.
  if (!exact && !integer && best.ticks.size() == 3) {
    if (hi - lo > 0 && best.hi - hi < lo - best.lo) {
      best.hi += best.step;
      best.ticks.push_back(best.hi);
    } else {
      best.lo -= best.step;
      best.ticks.insert(best.ticks.begin(), best.lo);
    }
  }
  return best;
}

std::string tick_label(double value, double step) {
  step = std::abs(step);
  if (!std::isfinite(value) || !std::isfinite(step) || step == 0)
    return fmt::format("{:g}", value);
  if (std::abs(value) < step * 1e-6)
    return "0";
  const int step_exp = static_cast<int>(std::floor(std::log10(step) + 1e-9));
  if (step >= 1e-3 && step < 1e5)
    return without_trailing_zeros(fmt::format("{:.{}f}", value, std::max(0, -step_exp)));
  // Scientific: as many mantissa digits as the step needs.
  const int exp = static_cast<int>(std::floor(std::log10(std::abs(value))));
  const std::string text = fmt::format("{:.{}e}", value, std::max(0, exp - step_exp));
  const auto e = text.find('e');
  return without_trailing_zeros(text.substr(0, e)) + text.substr(e);
}

std::vector<point> moving_average(const std::vector<point>& points, int n) {
  n = std::max(1, n);
  std::vector<point> kept;
  for (const auto& p : points)
    if (finite(p))
      kept.push_back(p);
  std::vector<point> out;
  double sum = 0;
  for (size_t i = 0; i < kept.size(); ++i) {
    sum += kept[i].second;
    if (i >= static_cast<size_t>(n))
      sum -= kept[i - static_cast<size_t>(n)].second;
    const auto count = static_cast<double>(std::min(i + 1, static_cast<size_t>(n)));
    out.emplace_back(kept[i].first, sum / count);
  }
  return out;
}

std::string escape(const std::string& text) {
  constexpr const char* replacement = "\xEF\xBF\xBD"; // U+FFFD
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
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
        case '\'':
          out += "&apos;";
          break;
        default: // XML 1.0 allows no control character but tab, newline and return
          out += (c < 0x20 && c != '\t' && c != '\n' && c != '\r') ? replacement
                                                                   : std::string(1, text[i]);
      }
      ++i;
      continue;
    }
    // A multi-byte UTF-8 sequence is kept whole when it is one; any other byte is replaced.
    const size_t length = c >= 0xC2 && c <= 0xDF   ? 2
                          : c >= 0xE0 && c <= 0xEF ? 3
                          : c >= 0xF0 && c <= 0xF4 ? 4
                                                   : 0;
    bool valid = length > 0 && i + length <= text.size();
    for (size_t j = 1; valid && j < length; ++j)
      valid = (static_cast<unsigned char>(text[i + j]) & 0xC0) == 0x80;
    if (valid) {
      out.append(text, i, length);
      i += length;
    } else {
      out += replacement;
      ++i;
    }
  }
  return out;
}

std::string svg(const std::string& heading, const std::vector<chart>& charts, const options& opts) {
  const int columns = std::max(1, opts.columns);
  std::vector<std::string> names;
  for (const auto& c : charts)
    for (const auto& s : c.lines)
      if (std::find(names.begin(), names.end(), s.name) == names.end())
        names.push_back(s.name);
  const double width = columns * chart_w + (columns + 1) * gap;
  std::string legend_svg;
  const double legend_h = legend(names, width, heading_h + 4, legend_svg);
  const double head = heading_h + (legend_h > 0 ? legend_h + 8 : 0);
  const auto rows = (static_cast<int>(charts.size()) + columns - 1) / columns;
  const double height = head + rows * (chart_h + gap) + gap;
  std::string out = fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" )"
                                R"(height="{1}" viewBox="0 0 {0} {1}" font-family="sans-serif">)"
                                "\n",
                                width, height);
  out += fmt::format(R"(<rect width="100%" height="100%" fill="#fafafa"/>)"
                     "\n"
                     R"(<text x="{}" y="26" font-size="16" fill="#222">{}</text>)"
                     "\n",
                     gap, escape(heading));
  out += legend_svg;
  for (size_t i = 0; i < charts.size(); ++i) {
    const auto col = static_cast<double>(static_cast<int>(i) % columns);
    const auto row = static_cast<double>(static_cast<int>(i) / columns);
    out += draw_chart(charts[i], names, opts, gap + col * (chart_w + gap),
                      head + row * (chart_h + gap)) +
           "\n";
  }
  return out + "</svg>\n";
}

} // namespace pedagogy::plot
