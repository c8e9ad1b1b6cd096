// The memory plan of a job: what every rank's device must hold, computed from the config, the
// placement and the models' shapes before any model loads, printed at start, and refused when a
// rank needs more than its device has (cluster.device_memory_gib, or what the device reports).
//
// Per learner: weights and gradients in train.dtype; AdamW's float32 moments (and, in bf16, the
// float32 master weights), divided by the learners when train.shard_optimizer (ZeRO-1); the
// frozen reference when beta > 0; activations of one micro-batch of the longest training
// sequence (layer inputs only with activation checkpointing, plus one layer's internals while it
// is recomputed; the attention mask; the chunked log-probs' logits and the float32 lm-head
// gradient they accumulate). Per generator: its weights, its KV-cache budget, and one step's
// logits. Per device: a reserve for the CUDA context and the allocator's fragmentation. The
// figures are estimates of what the tensors take, not a measurement.
#pragma once

#include "config/schema.hpp"
#include "jobs/placement.hpp"
#include "models/weights/model_config.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace pedagogy::actors {

struct memory_item {
  std::string what; // e.g. "learner weights (bf16)"
  double bytes = 0;
};

struct rank_memory {
  int rank = 0;
  std::vector<std::string> roles;
  std::vector<memory_item> items;
  double capacity = 0; // bytes; 0 = not known (a CPU): not checked
  double total() const;
  bool fits() const {
    return capacity <= 0 || total() <= capacity;
  }
};

struct memory_plan {
  std::vector<rank_memory> ranks;
  std::vector<std::string> notes; // assumptions and shapes that could not be read
  // Placed roles whose model shape is not known: their ranks' figures leave them out, so the
  // plan cannot say it fits.
  std::vector<std::string> unknown_roles;
  bool fits() const;
  // A table: one row per rank (GiB per category), then the notes.
  std::string table() const;
};

// The shape of a role's model ("tutor", "student", "judge"), or nullopt when unknown.
using shape_source = std::function<std::optional<models::model_config>(const std::string& role)>;
// Reads <role>.model/config.json, or the preset of <role>.init when the folder does not exist.
shape_source shapes_from_config(const config::config& cfg);

// `capacity(rank)`: that rank's device memory in bytes (0 = unknown / a CPU).
memory_plan plan_memory(const config::config& cfg, const placement& where,
                        const shape_source& shapes, const std::function<double(int)>& capacity,
                        bool has_cuda);

// The capacity rule of a job: cluster.device_memory_gib when set, else what the device of this
// process reports for its own rank (`device` "cuda[:N]"), else 0.
double device_capacity_bytes(const config::config& cfg, const std::string& device);

// Throws input_error naming the knobs to change when rank `rank` (or, with rank < 0, any rank)
// does not fit.
void check_memory_plan(const memory_plan& plan, int rank = -1);

} // namespace pedagogy::actors
