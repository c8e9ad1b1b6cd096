// A training checkpoint's model and optimizer files (see checkpoint_files.hpp).
#include "models/checkpoint_files.hpp"

#include "models/safetensors.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <stdexcept>

namespace pedagogy::models {

namespace fs = std::filesystem;

void save_training_checkpoint(const fs::path& dir, const transformer& model, adamw& optimizer,
                              const fs::path& tokenizer_dir) {
  for (const auto& [name, p] : model.named_parameters())
    if (!at::isfinite(p).all().item<bool>())
      throw std::runtime_error(
        fmt::format("refusing to save {}: parameter {} is not finite", dir.string(), name));
  fs::create_directories(dir);
  model.save(dir);
  // chat_template.jinja, which recent transformers write, takes precedence over the template in
  // tokenizer_config.json: without it a checkpoint could chat in another format.
  for (const char* file :
       {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"})
    if (fs::exists(tokenizer_dir / file))
      fs::copy_file(tokenizer_dir / file, dir / file, fs::copy_options::overwrite_existing);
  save_safetensors(dir / "optimizer.safetensors", optimizer.state(),
                   {{"steps", std::to_string(optimizer.steps())}});
}

void load_optimizer_state(adamw& optimizer, const fs::path& dir, const std::string& missing_hint) {
  const auto file = dir / "optimizer.safetensors";
  if (!fs::exists(file))
    throw input_error(file.string(), "the checkpoint has no optimizer state", missing_hint);
  auto state_file = safetensors_file::open(file);
  named_tensors state;
  for (const auto& [name, t] : optimizer.state())
    if (state_file.contains(name))
      state.emplace_back(name, state_file.tensor(name).clone());
  const auto& meta = state_file.header().metadata;
  auto steps = meta.find("steps");
  if (steps == meta.end())
    throw input_error(file.string(), "no 'steps' in the metadata", "the file is not ours");
  optimizer.load_state(state, std::stoll(steps->second), file.string());
}

} // namespace pedagogy::models
