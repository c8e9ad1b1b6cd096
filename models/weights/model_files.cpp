// Reads model-directory files, refusing anything that is not a regular file (see model_files.hpp).
#include "models/weights/model_files.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pedagogy::models {

namespace {

std::string kind_of(std::filesystem::file_type type) {
  switch (type) {
    case std::filesystem::file_type::directory:
      return "a folder";
    case std::filesystem::file_type::fifo:
      return "a FIFO (named pipe)";
    case std::filesystem::file_type::socket:
      return "a socket";
    case std::filesystem::file_type::character:
    case std::filesystem::file_type::block:
      return "a device";
    default:
      return "not a regular file";
  }
}

} // namespace

void require_regular_file(const std::filesystem::path& path, const std::string& hint) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec); // follows symbolic links
  if (status.type() == std::filesystem::file_type::not_found)
    throw input_error(path.string(), fmt::format("cannot open: {}", std::strerror(ENOENT)), hint);
  if (ec)
    throw input_error(path.string(), fmt::format("cannot inspect: {}", ec.message()), hint);
  if (status.type() != std::filesystem::file_type::regular)
    throw input_error(path.string(),
                      fmt::format("is {}, not a regular file", kind_of(status.type())), hint);
}

std::string read_regular_file(const std::filesystem::path& path, const std::string& hint) {
  require_regular_file(path, hint);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw input_error(path.string(), fmt::format("cannot read: {}", std::strerror(errno)), hint);
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw input_error(path.string(), "reading failed", hint);
  return text.str();
}

} // namespace pedagogy::models
