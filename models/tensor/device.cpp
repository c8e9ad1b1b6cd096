// Config device strings to usable torch devices (see device.hpp).
#include "models/tensor/device.hpp"

#include "runtime/errors.hpp"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <fmt/format.h>
#include <torch/cuda.h>

namespace pedagogy::models {

c10::Device device_from_config(const std::string& text, const std::string& key) {
  const auto gpus = static_cast<int64_t>(torch::cuda::device_count());
  if (text == "auto")
    return gpus > 0 ? c10::Device(c10::kCUDA) : c10::Device(c10::kCPU);
  const char* const usage = "use cpu, cuda, cuda:N or auto";
  c10::Device device(c10::kCPU);
  try {
    device = c10::Device(text);
  } catch (const std::exception&) {
    throw input_error(key, fmt::format("'{}' is not a device", text), usage);
  }
  if (!device.is_cpu() && !device.is_cuda())
    throw input_error(key, fmt::format("'{}' is not a device this program runs on", text), usage);
  if (device.is_cpu())
    return device;
  // A CUDA build registers its device guard at load time, GPU or not: that tells a CPU-only
  // LibTorch from a machine where no GPU is visible.
  if (!c10::impl::hasDeviceGuardImpl(c10::kCUDA))
    throw input_error(
      key, fmt::format("'{}' asks for a GPU, but this LibTorch is a CPU-only build", text),
      fmt::format("set {}=cpu, or build against PyTorch's CUDA LibTorch (docs/gpu.md)", key));
  if (gpus == 0)
    throw input_error(key,
                      fmt::format("'{}' asks for a GPU, but none is visible to this process", text),
                      fmt::format("set {}=cpu, or check nvidia-smi and CUDA_VISIBLE_DEVICES", key));
  if (device.has_index() && device.index() >= gpus)
    throw input_error(key,
                      fmt::format("'{}' does not exist: this process sees {} GPU(s)", text, gpus),
                      fmt::format("use cuda:0 .. cuda:{} (or cuda, or auto)", gpus - 1));
  return device;
}

} // namespace pedagogy::models
