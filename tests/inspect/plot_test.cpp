// The SVG charts of `pedagogy plot`: round ticks for any range, compact labels, the moving
// average, one line per series with a legend, NaN skipped, fixed ranges, XML escaping, "no data".
#include "inspect/plot.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace pedagogy;
using plot::nice_axis;
using plot::tick_label;

namespace {

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// The labels of an axis, as drawn.
std::vector<std::string> labels(const plot::axis& a) {
  std::vector<std::string> out;
  for (double t : a.ticks)
    out.push_back(tick_label(t, a.step));
  return out;
}

// The `points` attribute of every polyline, in order.
std::vector<std::string> polylines(const std::string& svg) {
  std::vector<std::string> out;
  for (auto at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    const auto begin = svg.find("points=\"", at) + 8;
    out.push_back(svg.substr(begin, svg.find('"', begin) - begin));
  }
  return out;
}

// The text of the element that follows `marker` (the first one after it).
std::string text_after(const std::string& svg, const std::string& marker) {
  const auto at = svg.find(marker);
  REQUIRE(at != std::string::npos);
  const auto begin = svg.find('>', svg.find("<text", at)) + 1;
  return svg.substr(begin, svg.find("</text>", begin) - begin);
}

plot::series line(const std::string& name, std::vector<std::pair<double, double>> points) {
  return {name, std::move(points)};
}

const double not_a_number = std::numeric_limits<double>::quiet_NaN();
const double infinity = std::numeric_limits<double>::infinity();

} // namespace

TEST_CASE("the ticks of 0 to 1 are 0 to 1 by 0.2") {
  for (bool exact : {false, true}) {
    const auto a = nice_axis(0, 1, exact);
    CHECK(labels(a) == std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"});
    CHECK(a.lo == 0);
    CHECK(a.hi == 1);
  }
}

TEST_CASE("the ticks of 3 to 97 are the multiples of 20 from 0 to 100") {
  const auto a = nice_axis(3, 97);
  CHECK(a.step == 20);
  CHECK(labels(a) == std::vector<std::string>{"0", "20", "40", "60", "80", "100"});
  CHECK(a.lo == 0);
  CHECK(a.hi == 100);
}

TEST_CASE("ticks of tiny negative and constant ranges are round and cover the data") {
  CHECK(labels(nice_axis(-0.5, -0.469)) ==
        std::vector<std::string>{"-0.5", "-0.49", "-0.48", "-0.47", "-0.46"});
  CHECK(labels(nice_axis(1.2e-5, 9.8e-5)) ==
        std::vector<std::string>{"0", "2e-05", "4e-05", "6e-05", "8e-05", "1e-04"});
  // A constant learning rate: a range around it, the value in the middle.
  CHECK(labels(nice_axis(1e-6, 1e-6)) ==
        std::vector<std::string>{"9e-07", "9.5e-07", "1e-06", "1.05e-06", "1.1e-06"});
  CHECK(labels(nice_axis(0, 0)) == std::vector<std::string>{"-1", "-0.5", "0", "0.5", "1"});
}

TEST_CASE("every range from 1e-9 to 1e9 wide gets 4 to 6 round ticks that cover it") {
  int failures = 0;
  for (int e = -9; e <= 9; ++e)
    for (double width : {1.0, 1.3, 1.7, 2.2, 3.1, 4.4, 5.9, 7.5, 9.2})
      for (double offset : {-3.7, -0.5, 0.0, 0.31, 2.0, 11.3}) {
        const double span = width * std::pow(10.0, e);
        const double lo = offset * span, hi = lo + span;
        const auto a = nice_axis(lo, hi);
        const double mantissa = a.step / std::pow(10.0, std::floor(std::log10(a.step) + 1e-9));
        const bool round = std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 ||
                           std::abs(mantissa - 5) < 1e-9;
        const bool ok = a.ticks.size() >= 4 && a.ticks.size() <= 6 && round &&
                        a.lo <= lo + 1e-9 * span && a.hi >= hi - 1e-9 * span &&
                        a.ticks.front() == a.lo && a.ticks.back() == a.hi;
        if (!ok && ++failures <= 5) // the first mismatches, not hundreds
          MESSAGE("[" << lo << ", " << hi << "]: " << a.ticks.size() << " ticks of step " << a.step
                      << " from " << a.lo << " to " << a.hi);
      }
  CHECK(failures == 0);
}

TEST_CASE("adjacent tick labels always differ") {
  int failures = 0;
  for (int e = -12; e <= 12; ++e)
    for (double width : {1.0, 1.5, 3.3, 7.1})
      for (double offset : {-2.0, 0.0, 0.45, 100.0}) {
        const double span = width * std::pow(10.0, e);
        const auto l = labels(nice_axis(offset * span, offset * span + span));
        for (size_t i = 1; i < l.size(); ++i)
          if (l[i] == l[i - 1] && ++failures <= 5)
            MESSAGE("two ticks labelled " << l[i]);
      }
  CHECK(failures == 0);
}

TEST_CASE("steps of training get whole-number ticks") {
  CHECK(labels(nice_axis(1, 6, false, /*integer=*/true)) ==
        std::vector<std::string>{"1", "2", "3", "4", "5", "6"});
  CHECK(labels(nice_axis(1, 3, false, /*integer=*/true)) ==
        std::vector<std::string>{"1", "2", "3"});
  for (double hi : {2.0, 7.0, 21.0, 37.0, 100.0, 12345.0})
    for (double t : nice_axis(1, hi, false, /*integer=*/true).ticks) {
      INFO("1 to " << hi);
      CHECK(t == std::round(t));
    }
}

TEST_CASE("tick labels are fixed for ordinary values and 1e-06 style for tiny ones") {
  CHECK(tick_label(0.6000000000000001, 0.2) == "0.6");
  CHECK(tick_label(1.0, 0.2) == "1");
  CHECK(tick_label(100, 20) == "100");
  CHECK(tick_label(0.05, 0.01) == "0.05");
  CHECK(tick_label(1e-17, 0.1) == "0"); // 3 * 0.1 - 0.3, not "1e-17"
  CHECK(tick_label(-0.0, 0.5) == "0");
  CHECK(tick_label(1e-6, 5e-8) == "1e-06");
  CHECK(tick_label(1.05e-6, 5e-8) == "1.05e-06");
  CHECK(tick_label(3e7, 1e7) == "3e+07");
}

TEST_CASE("the moving average is the trailing mean of the last N points") {
  const auto m = plot::moving_average({{1, 1}, {2, 2}, {3, 3}, {4, 10}}, 3);
  REQUIRE(m.size() == 4);
  const std::vector<double> want = {1, 1.5, 2, 5};
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("point " << i);
    CHECK(m[i].first == static_cast<double>(i + 1));
    CHECK(m[i].second == doctest::Approx(want[i]).epsilon(1e-12));
  }
  // NaN and infinity are left out, not averaged in; N = 1 is the points themselves.
  const auto skipped = plot::moving_average({{1, 1}, {2, not_a_number}, {3, infinity}, {4, 3}}, 2);
  REQUIRE(skipped.size() == 2);
  CHECK(skipped[1].first == 4);
  CHECK(skipped[1].second == doctest::Approx(2).epsilon(1e-12));
  CHECK(plot::moving_average({{1, 4}, {2, 8}}, 1) ==
        std::vector<std::pair<double, double>>{{1, 4}, {2, 8}});
}

TEST_CASE("two series give two polylines and a legend naming both") {
  const std::vector<plot::chart> charts = {
    {"reward", {line("run-a", {{1, 0.1}, {2, 0.2}}), line("run-b", {{1, 0.3}, {2, 0.1}})}, {}},
    {"loss", {line("run-b", {{1, 1}, {2, 2}}), line("run-a", {{1, 3}, {2, 1}})}, {}}};
  const auto svg = plot::svg("two runs", charts);
  CHECK(polylines(svg).size() == 4);
  CHECK(count(svg, "class=\"legend-entry\"") == 2);
  CHECK(text_after(svg, "class=\"legend-entry\"") == "run-a");
  CHECK(count(svg, ">run-b</text>") == 1);
  // A run keeps its colour in every chart, whatever the order of the series.
  const auto colour_of = [&](const std::string& name, size_t nth) {
    auto at = svg.find("data-series=\"" + name + "\"");
    for (size_t i = 0; i < nth; ++i)
      at = svg.find("data-series=\"" + name + "\"", at + 1);
    const auto begin = svg.find("stroke=\"", at) + 8;
    return svg.substr(begin, 7);
  };
  CHECK(colour_of("run-b", 0) == colour_of("run-b", 1));
  CHECK(colour_of("run-a", 0) == colour_of("run-a", 1));
  CHECK(colour_of("run-a", 0) != colour_of("run-b", 0));
}

TEST_CASE("a single series has no legend") {
  const auto svg = plot::svg("one run", {{"reward", {line("run", {{1, 0.1}, {2, 0.2}})}, {}}});
  CHECK(count(svg, "legend-entry") == 0);
  CHECK(polylines(svg).size() == 1);
}

TEST_CASE("NaN and infinite points are skipped") {
  const auto svg = plot::svg(
    "h", {{"kl",
           {line("run", {{1, 0.5}, {2, not_a_number}, {3, infinity}, {infinity, 1}, {4, 0.25}})},
           {}}});
  CHECK(count(svg, "data-points=\"2\"") == 1);
  const auto lines = polylines(svg);
  REQUIRE(lines.size() == 1);
  CHECK(count(lines[0], ",") == 2); // two x,y pairs
  CHECK(count(svg, "<circle") == 2);
  CHECK(count(svg, "nan") == 0);
  CHECK(count(svg, "inf") == 0);
}

TEST_CASE("a fixed range is kept whatever the data") {
  const std::vector<std::pair<double, double>> low = {{10, 0.01}, {20, 0.05}, {30, 0.1}};
  const auto fixed = plot::svg("h", {{"solve rate", {line("run", low)}, std::pair{0.0, 1.0}}});
  CHECK(count(fixed, ">0.8</text>") == 1);
  CHECK(count(fixed, ">1</text>") == 1);
  CHECK(count(fixed, ">0.1</text>") == 0);
  const auto free = plot::svg("h", {{"solve rate", {line("run", low)}, std::nullopt}});
  CHECK(count(free, ">0.8</text>") == 0);
  CHECK(count(free, ">0.1</text>") == 1);
  // A value outside the fixed range is drawn at its edge, inside the chart.
  const auto above =
    plot::svg("h", {{"rate", {line("run", {{1, 0.5}, {2, 7}})}, std::pair{0.0, 1.0}}});
  const auto a = polylines(above);
  const auto f =
    polylines(plot::svg("h", {{"rate", {line("run", {{1, 0.5}, {2, 1}})}, std::pair{0.0, 1.0}}}));
  CHECK(a == f);
}

TEST_CASE("titles and legend names are escaped for XML") {
  const auto svg =
    plot::svg("runs/<a> & 'b'",
              {{"x < \"y\"", {line("a&b", {{1, 1}, {2, 2}}), line("c>d", {{1, 2}, {2, 1}})}, {}}});
  CHECK(count(svg, "runs/&lt;a&gt; &amp; &apos;b&apos;") == 1);
  CHECK(count(svg, "x &lt; &quot;y&quot;") == 2); // the title and its data-title
  CHECK(count(svg, ">a&amp;b</text>") == 1);
  CHECK(count(svg, ">c&gt;d</text>") == 1);
  CHECK(count(svg, "<a>") == 0);
  // Bytes XML cannot hold become U+FFFD; UTF-8 stays.
  CHECK(plot::escape("bell\x07 bad\xff ok \xc3\xa9") ==
        "bell\xEF\xBF\xBD bad\xEF\xBF\xBD ok \xc3\xa9");
}

TEST_CASE("a chart without points says no data") {
  const auto svg =
    plot::svg("h", {{"empty", {}, {}},
                    {"only NaN", {line("run", {{1, not_a_number}, {2, infinity}})}, {}},
                    {"fine", {line("run", {{1, 1}})}, {}}});
  CHECK(count(svg, ">no data</text>") == 2);
  CHECK(count(svg, "<circle") == 1);
}

TEST_CASE("smoothing draws a solid average over lighter raw points") {
  const plot::chart c{"loss", {line("run", {{1, 0}, {2, 3}, {3, 0}, {4, 3}})}, {}};
  plot::options smooth;
  smooth.smooth = 2;
  const auto svg = plot::svg("h", {c}, smooth);
  const auto lines = polylines(svg);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] != lines[1]);
  CHECK(count(svg, "stroke-opacity=\"1\"") == 1);    // the average
  CHECK(count(svg, "fill-opacity=\"1\"") == 0);      // raw dots are lighter
  CHECK(count(svg, "<circle") == 4);                 // every raw point still drawn
  CHECK(polylines(plot::svg("h", {c})).size() == 1); // off by default
  CHECK(plot::svg("h", {c}, smooth) == svg);         // and the same picture every time
}
