// Reading the small text files of a model directory (config.json, tokenizer.json,
// tokenizer_config.json, a shard index) so that a path that is not a regular file is refused
// before it is opened: a FIFO would block the open (and the read) forever, a folder reads as
// nothing, a device never ends.
#pragma once

#include <filesystem>
#include <string>

namespace pedagogy::models {

// Throws input_error naming `path` when it is missing or not a regular file (following
// symbolic links). `hint` says what the person should point at.
void require_regular_file(const std::filesystem::path& path, const std::string& hint);

// The whole file as bytes, after require_regular_file().
std::string read_regular_file(const std::filesystem::path& path, const std::string& hint);

} // namespace pedagogy::models
