// The tiny preset's whole pipeline as a benchmark runs it: fresh random models and problems in
// a temporary folder, `steps` training steps of `config_file` (changed by `adjust`), and the
// metrics.jsonl lines it wrote. Shared by `bench train` and `bench inspect`.
#pragma once

#include "config/schema.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

namespace pedagogy::bench {

std::vector<nlohmann::json> tiny_steps(const std::filesystem::path& config_file, int64_t steps,
                                       const std::function<void(config::config&)>& adjust);

} // namespace pedagogy::bench
