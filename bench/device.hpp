// Where a benchmark runs: the --device flag ("cpu", "cuda", "cuda:N") read into a LibTorch
// device, and the two things timing on a GPU needs (waiting for its queued work, its memory).
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace pedagogy::bench {

// "cpu", "cuda" or "cuda:N"; throws input_error naming `where` for anything else, or for a CUDA
// device this process cannot see (a CPU build of LibTorch, no driver, an index past the last GPU).
c10::Device parse_device(const std::string& text, const std::string& where);

// Returns once every kernel queued on `device` has finished (nothing to wait for on the CPU),
// so that a clock read afterwards measures the work and not its launch.
void synchronize(const c10::Device& device);

// Memory in use on a CUDA device in MB, as the driver counts it; -1 on the CPU.
double device_memory_mb(const c10::Device& device);

} // namespace pedagogy::bench
