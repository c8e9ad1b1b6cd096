// A training checkpoint's model and optimizer files (see checkpoint_files.hpp).
#include "models/training/checkpoint_files.hpp"

#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <map>
#include <set>
#include <stdexcept>

namespace pedagogy::models {

namespace fs = std::filesystem;

namespace {

fs::path shard_file(const fs::path& dir, int64_t rank) {
  return rank == 0 ? dir / "optimizer.safetensors"
                   : dir / fmt::format("optimizer.shard-{}.safetensors", rank);
}

} // namespace

void save_training_checkpoint(const fs::path& dir, const transformer& model, adamw& optimizer,
                              const fs::path& tokenizer_dir, optimizer_shard shard) {
  fs::create_directories(dir);
  const std::map<std::string, std::string> metadata{{"steps", std::to_string(optimizer.steps())},
                                                    {"shard", std::to_string(shard.rank)},
                                                    {"shards", std::to_string(shard.count)}};
  if (shard.rank > 0) {
    save_safetensors(shard_file(dir, shard.rank), optimizer.state(), metadata);
    return;
  }
  {
    // One read for all parameters: is every one of them finite?
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> finite;
    const auto parameters = model.named_parameters();
    for (const auto& [name, p] : parameters)
      finite.push_back(at::isfinite(p).all());
    const at::Tensor flags = at::stack(finite).to(at::kCPU);
    for (size_t i = 0; i < parameters.size(); ++i)
      if (!flags[static_cast<int64_t>(i)].item<bool>())
        throw std::runtime_error(fmt::format("refusing to save {}: parameter {} is not finite",
                                             dir.string(), parameters[i].first));
  }
  model.save(dir);
  // chat_template.jinja, which recent transformers write, takes precedence over the template in
  // tokenizer_config.json: without it a checkpoint could chat in another format.
  for (const char* file :
       {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"})
    if (fs::exists(tokenizer_dir / file))
      fs::copy_file(tokenizer_dir / file, dir / file, fs::copy_options::overwrite_existing);
  save_safetensors(shard_file(dir, 0), optimizer.state(), metadata);
}

std::vector<fs::path> optimizer_files(const fs::path& dir, const std::string& missing_hint) {
  const auto first = shard_file(dir, 0);
  if (!fs::exists(first))
    throw input_error(first.string(), "the checkpoint has no optimizer state", missing_hint);
  const auto& meta = safetensors_file::open(first).header().metadata;
  auto shards = meta.find("shards");
  int64_t count = 1; // checkpoints from before ZeRO-1 have no count
  if (shards != meta.end()) {
    try {
      count = std::stoll(shards->second);
    } catch (const std::exception&) {
      count = 0;
    }
    if (count < 1)
      throw input_error(first.string(),
                        fmt::format("'shards' = '{}' in the metadata", shards->second),
                        "the file is not ours");
  }
  std::vector<fs::path> files{first};
  for (int64_t rank = 1; rank < count; ++rank) {
    files.push_back(shard_file(dir, rank));
    if (!fs::exists(files.back()))
      throw input_error(files.back().string(),
                        fmt::format("optimizer shard {} of {} is missing", rank, count),
                        "every learner writes its shard; the checkpoint is incomplete, resume "
                        "from an earlier one");
    safetensors_file::open(files.back()); // validates the header against the size
  }
  return files;
}

void load_optimizer_state(adamw& optimizer, const fs::path& dir, const std::string& missing_hint) {
  const auto files = optimizer_files(dir, missing_hint);
  // The names this learner may need: every parameter's moments and master, from any shard.
  // (a float32 learner takes every parameter's master where a bf16 run left them).
  std::set<std::string> wanted;
  const auto& parameters = optimizer.parameters();
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto& [name, p] = parameters[i];
    if (optimizer.owns(i)) {
      wanted.insert("exp_avg." + name);
      wanted.insert("exp_avg_sq." + name);
    }
    if (optimizer.owns(i) || p.scalar_type() == at::kFloat)
      wanted.insert("master." + name);
  }
  named_tensors state;
  int64_t steps = -1;
  for (const auto& file : files) {
    auto state_file = safetensors_file::open(file);
    for (const auto& name : wanted)
      if (state_file.contains(name))
        state.emplace_back(name, state_file.tensor(name).clone());
    const auto& meta = state_file.header().metadata;
    auto found = meta.find("steps");
    if (found == meta.end())
      throw input_error(file.string(), "no 'steps' in the metadata", "the file is not ours");
    const int64_t these = std::stoll(found->second);
    if (steps >= 0 && these != steps)
      throw input_error(file.string(),
                        fmt::format("this shard is at step {}, the first at {}", these, steps),
                        "the shards come from different saves; resume from another checkpoint");
    steps = these;
  }
  optimizer.load_state(state, steps, files.front().string());
}

} // namespace pedagogy::models
