// The generator actor: one generation engine on one device, serving tutor, student or judge
// requests from many conversations at once. It is spawned detached (it blocks on compute) and
// runs one engine step per self-message, so new requests, cancellations and status queries are
// taken between steps.
#pragma once

#include "actors/protocol.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace pedagogy {
class weight_channel;
}

namespace pedagogy::actors {

struct generator_setup {
  std::string role = "generator"; // "tutor", "student", "judge": for logs and status
  std::filesystem::path model;    // Hugging Face model directory
  std::string device = "cpu";     // "auto" (cuda when there is one), "cpu", "cuda", "cuda:N"
  std::string dtype = "float32";  // "auto" (bfloat16 on cuda), "float32" or "bfloat16"
  int64_t max_context = 8192;
  int64_t max_batch_sequences = 64;
  int64_t max_batch_tokens = 512;
  int64_t kv_cache_tokens = 1 << 20;
  int64_t kv_block_tokens = 16;
  // Where new weights come from (tutor generators); `weights` messages fail without one.
  std::shared_ptr<weight_channel> weights;
};

// Loads the model (throws input_error for a bad directory, before any actor exists) and spawns
// the generator.
generator_actor spawn_generator(caf::actor_system& system, const generator_setup& setup);

} // namespace pedagogy::actors
