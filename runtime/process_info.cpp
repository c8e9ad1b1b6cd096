// Process and device memory for status reports (see process_info.hpp).
#include "runtime/process_info.hpp"

#include <unistd.h>

#include <fstream>
#include <utility>

#ifdef PEDAGOGY_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace pedagogy::process_info {

int64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(in >> size >> resident))
    return 0;
  return resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
}

namespace {

// cudaMemGetInfo of `device`: {free, total}, or {-1, -1}.
std::pair<int64_t, int64_t> device_memory(const std::string& device) {
#ifdef PEDAGOGY_HAVE_CUDA
  if (device.rfind("cuda", 0) != 0)
    return {-1, -1};
  int index = 0;
  if (const auto colon = device.find(':'); colon != std::string::npos)
    index = std::atoi(device.c_str() + colon + 1);
  // cudaMemGetInfo asks the calling thread's current device: switch to ours and back.
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(index) != cudaSuccess)
    return {-1, -1};
  size_t free = 0, total = 0;
  const bool ok = cudaMemGetInfo(&free, &total) == cudaSuccess;
  cudaSetDevice(previous);
  if (!ok)
    return {-1, -1};
  return {static_cast<int64_t>(free), static_cast<int64_t>(total)};
#else
  (void)device;
  return {-1, -1};
#endif
}

} // namespace

int64_t device_used_bytes(const std::string& device) {
  const auto [free, total] = device_memory(device);
  return total < 0 ? -1 : total - free;
}

int64_t device_total_bytes(const std::string& device) {
  return device_memory(device).second;
}

} // namespace pedagogy::process_info
