// The benchmarks' --device flag (see device.hpp).
#include "bench/device.hpp"

#include "runtime/errors.hpp"
#include "runtime/process_info.hpp"

#include <torch/cuda.h>

namespace pedagogy::bench {

c10::Device parse_device(const std::string& text, const std::string& where) {
  const bool cuda = text == "cuda" || text.rfind("cuda:", 0) == 0;
  if (text != "cpu" && !cuda)
    throw input_error(where, "unknown device '" + text + "'", "use cpu, cuda or cuda:N");
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(text);
  } catch (const std::exception&) {
    throw input_error(where, "unknown device '" + text + "'", "use cpu, cuda or cuda:N");
  }
  if (device.is_cuda()) {
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (count == 0)
      throw input_error(where, "no CUDA device is usable in this process",
                        "build against a CUDA LibTorch (docs/gpu.md) on a machine with a GPU, "
                        "or use --device cpu");
    if (device.has_index() && device.index() >= count)
      throw input_error(where, fmt::format("'{}' does not exist: {} GPU(s) here", text, count),
                        fmt::format("use cuda:0 .. cuda:{}", count - 1));
    if (!device.has_index())
      device = c10::Device(c10::kCUDA, 0);
  }
  return device;
}

void synchronize(const c10::Device& device) {
  if (device.is_cuda())
    torch::cuda::synchronize(device.index());
}

double device_memory_mb(const c10::Device& device) {
  if (!device.is_cuda())
    return -1;
  const int64_t bytes = process_info::device_used_bytes(device.str());
  return bytes < 0 ? -1 : static_cast<double>(bytes) / (1 << 20);
}

} // namespace pedagogy::bench
