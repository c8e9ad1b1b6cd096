// What this binary was built with and runs against, for `pedagogy --version` and bug reports.
#pragma once

#include <string>
#include <vector>

namespace pedagogy {

struct component_version {
  std::string name;    // "CAF", "LibTorch", "MPI", ...
  std::string version; // "0.17.6"
  std::string detail;  // extra facts, e.g. "CPU build" or "no CUDA device: ..."
};

// The project's own version, e.g. "0.1.0".
std::string pedagogy_version();

// Every dependency that matters when reporting a bug, CUDA/NCCL only when built with them.
std::vector<component_version> dependency_versions();

// One line per component, as printed by `pedagogy --version`.
std::string version_report();

// Implemented in cuda_info.cpp when the build has CUDA and NCCL.
std::vector<component_version> cuda_versions();

} // namespace pedagogy
