// The learner actor (see learner_actor.hpp).
#include "actors/learner_actor.hpp"

#include "actors/step_batch.hpp"
#include "models/safetensors.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"
#include "runtime/weight_channel.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

namespace pedagogy::actors {

namespace {

struct learner_state {
  std::shared_ptr<models::learner> learner;
  std::shared_ptr<weight_channel> weights;
  std::shared_ptr<models::data_parallel> peers;
  int64_t index = 0;
  models::spike_options spike;
  std::filesystem::path model; // where tokenizer files come from
  static inline const char* name = "learner";
};

// A checkpoint's model is a Hugging Face directory: weights, config.json and tokenizer files,
// so our loader and transformers both read it; the optimizer state lies beside it.
void save_checkpoint(learner_state& s, const std::filesystem::path& dir) {
  // A checkpoint with NaN/inf weights would poison every run that resumes from it.
  for (const auto& [name, p] : s.learner->policy().named_parameters())
    if (!at::isfinite(p).all().item<bool>())
      throw std::runtime_error(
        fmt::format("refusing to save {}: parameter {} is not finite", dir.string(), name));
  std::filesystem::create_directories(dir);
  s.learner->policy().save(dir);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    if (std::filesystem::exists(s.model / file))
      std::filesystem::copy_file(s.model / file, dir / file,
                                 std::filesystem::copy_options::overwrite_existing);
  auto& opt = s.learner->optimizer();
  models::save_safetensors(dir / "optimizer.safetensors", opt.state(),
                           {{"steps", std::to_string(opt.steps())}});
}

} // namespace

learner_actor spawn_learner(caf::actor_system& system, const learner_setup& setup) {
  const at::Device device(setup.device == "auto" ? (at::hasCUDA() ? "cuda" : "cpu") : setup.device);
  const auto start = setup.resume.empty() ? setup.model : setup.resume;
  auto policy = models::transformer::load(start, device, at::kFloat);
  std::optional<models::transformer> reference;
  if (setup.options.grpo.beta != 0.0)
    reference = models::transformer::load(setup.model, device, at::kFloat);
  auto l =
    std::make_unique<models::learner>(std::move(policy), std::move(reference), setup.options);
  if (!setup.resume.empty()) {
    const auto file = setup.resume / "optimizer.safetensors";
    if (!std::filesystem::exists(file))
      throw input_error(
        file.string(), "the checkpoint has no optimizer state",
        "the folder was not written by `pedagogy train` (whose checkpoints always hold "
        "optimizer.safetensors); resume from one that was");
    auto state_file = models::safetensors_file::open(file);
    models::named_tensors state;
    for (const auto& [name, t] : l->optimizer().state())
      if (state_file.contains(name))
        state.emplace_back(name, state_file.tensor(name).clone());
    const auto& meta = state_file.header().metadata;
    auto steps = meta.find("steps");
    if (steps == meta.end())
      throw input_error(file.string(), "no 'steps' in the metadata", "the file is not ours");
    l->optimizer().load_state(state, std::stoll(steps->second), file.string());
  }
  log::get("learner")->info("learner ready: {} ({} parameters, {}, reference {})", start.string(),
                            l->policy().config().parameter_count(), setup.device,
                            setup.options.grpo.beta != 0.0 ? "loaded" : "none");
  auto behaviour = [](learner_actor::stateful_pointer<learner_state> self,
                      std::shared_ptr<models::learner> owned,
                      learner_setup given) -> learner_actor::behavior_type {
    self->state.learner = std::move(owned);
    self->state.weights = std::move(given.weights);
    self->state.peers = std::move(given.peers);
    self->state.index = given.index;
    self->state.spike = given.spike;
    self->state.model = std::move(given.model);
    return {
      [=](learn_atom, const rollout_batch& batch) -> caf::result<models::learn_report> {
        try {
          auto& s = self->state;
          if (!s.peers)
            return s.learner->learn(batch.sequences);
          std::vector<models::training_sequence> share;
          for (size_t i : learner_share(batch.sequences, s.peers->size(), s.index))
            share.push_back(batch.sequences[i]);
          return s.learner->learn(share, s.peers.get());
        } catch (const models::non_finite_error& e) {
          // Every rank saw the same summed loss and gradient norm: all of them are here.
          return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
        } catch (const std::exception& e) {
          // The other learners would wait in their next gradient sum: end the job instead.
          if (self->state.peers)
            self->state.peers->abort(
              fmt::format("learner {} failed: {}", self->state.index, e.what()));
          return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
        }
      },
      [=](score_atom, const rollout_batch& batch) -> caf::result<std::vector<models::ped_score>> {
        try {
          return self->state.learner->score(batch.sequences, self->state.spike);
        } catch (const std::exception& e) {
          return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
        }
      },
      [=](publish_atom, int64_t version) -> caf::result<int64_t> {
        if (!self->state.weights)
          return caf::make_error(caf::sec::invalid_argument, "the learner has no weight channel");
        self->state.weights->offer(self->state.learner->policy().named_parameters(), version);
        return version;
      },
      [=](save_atom, const std::string& dir) -> caf::result<int64_t> {
        try {
          save_checkpoint(self->state, dir);
          return self->state.learner->optimizer().steps();
        } catch (const std::exception& e) {
          return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
        }
      },
    };
  };
  return system.spawn<caf::detached>(behaviour, std::shared_ptr<models::learner>(l.release()),
                                     setup);
}

} // namespace pedagogy::actors
