// Collects the versions of the dependencies this binary was built with and runs against.
#include "runtime/versions.hpp"

#include <caf/config.hpp>
#include <fmt/core.h>
#include <mpi.h>
#include <spdlog/version.h>

namespace pedagogy {

namespace {

std::string caf_version() {
  return fmt::format("{}.{}.{}", CAF_VERSION / 10000, (CAF_VERSION / 100) % 100, CAF_VERSION % 100);
}

// MPI_Get_library_version may be called before MPI_Init; keep its first clause only
// ("Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4").
component_version mpi_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string library(text, static_cast<size_t>(length));
  if (auto comma = library.find(','); comma != std::string::npos)
    library.resize(comma);
  while (!library.empty() && (library.back() == '\n' || library.back() == ' '))
    library.pop_back();
  int major = 0;
  int minor = 0;
  MPI_Get_version(&major, &minor);
  return {"MPI", fmt::format("{}.{}", major, minor), library};
}

} // namespace

std::string pedagogy_version() {
  return PEDAGOGY_VERSION;
}

std::vector<component_version> dependency_versions() {
  std::vector<component_version> out{
    {"CAF", caf_version(), ""},
    {"LibTorch", PEDAGOGY_TORCH_VERSION, PEDAGOGY_TORCH_DETAIL},
    mpi_version(),
    {"spdlog", fmt::format("{}.{}.{}", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH), ""},
    {"fmt",
     fmt::format("{}.{}.{}", FMT_VERSION / 10000, (FMT_VERSION / 100) % 100, FMT_VERSION % 100),
     ""},
    {"toml++", PEDAGOGY_TOMLPP_VERSION, ""},
  };
  for (auto& cuda : cuda_versions())
    out.push_back(std::move(cuda));
  return out;
}

std::string version_report() {
  std::string text = fmt::format("pedagogy {}\n", pedagogy_version());
  for (const auto& c : dependency_versions()) {
    text += fmt::format("  {:<9} {}", c.name, c.version);
    if (!c.detail.empty())
      text += fmt::format(" ({})", c.detail);
    text += '\n';
  }
  return text;
}

#ifndef PEDAGOGY_HAVE_CUDA
std::vector<component_version> cuda_versions() {
  return {{"CUDA", "-", "built without CUDA/NCCL"}};
}
#endif

} // namespace pedagogy
