// Printing benchmark figures as text or JSON (see bench.hpp).
#include "bench/bench.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace pedagogy::bench {

std::string figures::text() const {
  std::string out = title + "\n";
  for (const auto& [name, value] : values)
    out += fmt::format("  {:<34} {:.4g}\n", name, value);
  for (const auto& note : notes)
    out += "  " + note + "\n";
  return out;
}

std::string figures::json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : values)
    j[name] = value;
  return j.dump();
}

} // namespace pedagogy::bench
