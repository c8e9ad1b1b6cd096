// Loading, overriding, checking and printing the config (schema in schema.hpp).
//
//   auto cfg = config::load_file("config/tiny.toml", {"train.mu=1", "tutor.device=cpu"});
//   std::cout << config::to_toml(cfg);   // loads back to an equal config, less its secrets
//
// Every function reports bad input as pedagogy::input_error naming the file (with line and
// column), the key and a hint; nothing here logs or exits.
#pragma once

#include "config/schema.hpp"

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace pedagogy::config {

// Parses a TOML file, applies `overrides` ("section.key=value", Hydra style) and validates.
config load_file(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});

// Same for TOML text; `source` names it in errors (a file name or "<preset tiny>").
config load_string(std::string_view toml_text, std::string_view source,
                   const std::vector<std::string>& overrides = {});

// Sets one key from "section.key=value". The value is TOML ("1e-6", "true", "[1, 2]",
// "\"text\""); for string and enum keys a bare word is taken as the string itself.
void apply_override(config& cfg, std::string_view assignment);

// Cross-field rules (e.g. the batch must split into micro-batches). `source` prefixes errors.
void validate(const config& cfg, std::string_view source);

// The config as TOML, every key in schema order; load_string(to_toml(c)) == c, except that a
// secret (inspect.token) is written empty with a comment: this text is saved in run folders and
// checkpoints and printed, so it must never hold one.
std::string to_toml(const config& cfg);

// The keys whose values differ between two texts that to_toml() wrote, each as
// "train.learning_rate: 1e-06 vs 5e-07" (here's value first; a key one text lacks is "(absent)").
std::vector<std::string> differences(std::string_view here, std::string_view there);

// The range of an integer key, for a flag that stands in for it (rollout --samples).
struct integer_range {
  int64_t min = 0;
  int64_t max = 0;
};
integer_range range_of(std::string_view key);

// Every key as a dotted path ("tutor.sampling.temperature"), in schema order.
std::vector<std::string> key_paths();

// The known key closest to `unknown` (edit distance, or the same last component in another
// table); empty when nothing is close.
std::string nearest_key(std::string_view unknown);

} // namespace pedagogy::config
