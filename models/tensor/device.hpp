// The torch device a config's device string names ("cpu", "cuda", "cuda:N" or "auto"), refused
// with the config key when this process cannot use it: a CUDA device on a CPU-only LibTorch or on
// a machine without that GPU would otherwise fail deep inside the first tensor allocation with
// LibTorch's backend dump.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace pedagogy::models {

// "auto" is the first GPU when one is usable, else the CPU. Throws input_error naming `key`
// (e.g. "tutor.device") for anything else that is not a device this process can allocate on.
c10::Device device_from_config(const std::string& text, const std::string& key);

} // namespace pedagogy::models
