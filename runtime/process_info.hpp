// What a status report says about the process and device an actor runs on: resident memory
// and device memory in use. Cheap enough to call once per heartbeat.
#pragma once

#include <cstdint>
#include <string>

namespace pedagogy::process_info {

// The process's resident set size in bytes (Linux /proc/self/statm); 0 when unreadable.
int64_t resident_bytes();

// Memory in use on `device` ("cuda", "cuda:N") in bytes, as the driver counts it (every process
// on the GPU); -1 for the CPU, or when the build has no CUDA or the device cannot be asked.
int64_t device_used_bytes(const std::string& device);
// The memory `device` has in all, in bytes; -1 as above.
int64_t device_total_bytes(const std::string& device);

} // namespace pedagogy::process_info
