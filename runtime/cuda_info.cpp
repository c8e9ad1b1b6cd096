// CUDA runtime, driver and NCCL versions; compiled only when the build found CUDA with NCCL.
// Each call works without a GPU or driver: it then reports why no device is usable.
#include "runtime/versions.hpp"

#include <cuda_runtime_api.h>
#include <fmt/core.h>
#include <nccl.h>

namespace pedagogy {

namespace {

std::string cuda_version_string(int version) {
  return fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
}

} // namespace

std::vector<component_version> cuda_versions() {
  std::vector<component_version> out;
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  int devices = 0;
  cudaError_t status = cudaGetDeviceCount(&devices);
  std::string detail;
  if (status != cudaSuccess)
    detail = fmt::format("no usable device: {}", cudaGetErrorString(status));
  else
    detail = fmt::format("{} device(s), driver {}", devices,
                         driver > 0 ? cuda_version_string(driver) : "none");
  out.push_back({"CUDA", cuda_version_string(runtime), detail});

  int nccl = 0;
  ncclGetVersion(&nccl);
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  out.push_back(
    {"NCCL", fmt::format("{}.{}.{}", nccl / 10000, (nccl / 100) % 100, nccl % 100), ""});
  return out;
}

} // namespace pedagogy
