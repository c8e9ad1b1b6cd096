// The learner actor (see learner_actor.hpp).
#include "actors/learner_actor.hpp"

#include "actors/inspector_actor.hpp"
#include "collectives/weight_channel.hpp"
#include "models/tensor/device.hpp"
#include "models/training/checkpoint_files.hpp"
#include "models/weights/safetensors.hpp"
#include "rl/step_batch.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"
#include "runtime/process_info.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

namespace pedagogy::actors {

namespace {

struct learner_state {
  std::shared_ptr<models::learner> learner;
  std::shared_ptr<weight_channel> weights;
  std::shared_ptr<data_parallel> peers;
  int64_t index = 0;
  models::spike_options spike;
  std::filesystem::path model; // where tokenizer files come from
  std::string device;
  // Live inspection: what it is doing, and whom to tell while a long learn() runs.
  learner_status status;
  caf::actor_addr inspector;   // weak: the inspector holds this learner's handle
  caf::actor_addr learn_asker; // of the learn() running: told its micro-batches
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::steady_clock::time_point last_report;
  static inline const char* name = "learner";
};

using learner_pointer = learner_actor::stateful_pointer<learner_state>;

learner_status current_status(learner_state& s) {
  auto st = s.status;
  st.device = s.device;
  st.host_memory = process_info::resident_bytes();
  st.device_memory = process_info::device_used_bytes(s.device);
  return st;
}

// Runs one verb's work as `state`, timing it and keeping its failure for the status; `work`
// returns the verb's result (or throws).
template <class F>
auto busy(learner_pointer self, const char* state, F&& work) -> decltype(work()) {
  auto& s = self->state;
  s.status.state = state;
  const auto start = std::chrono::steady_clock::now();
  struct done_guard {
    learner_state& s;
    std::chrono::steady_clock::time_point start;
    ~done_guard() {
      s.status.state = "idle";
      s.status.busy_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  } guard{s, start};
  try {
    return work();
  } catch (const std::exception& e) {
    s.status.last_error = fmt::format("{}: {}", state, e.what());
    throw;
  }
}

void save_checkpoint(learner_state& s, const std::filesystem::path& dir) {
  const auto& o = s.learner->options();
  models::save_training_checkpoint(dir, s.learner->policy(), s.learner->optimizer(), s.model,
                                   {o.shard_rank, o.shard_count});
}

// The policy (from the checkpoint when resuming), the frozen reference when beta > 0, and the
// optimizer state of the checkpoint.
std::unique_ptr<models::learner> load_learner(const learner_setup& setup) {
  const at::Device device = models::device_from_config(setup.device, "tutor.device");
  const auto start = setup.resume.empty() ? setup.model : setup.resume;
  const auto dtype = setup.options.dtype;
  auto policy = models::transformer::load(start, device, dtype);
  policy.require_causal_lm(start);
  std::optional<models::transformer> reference;
  if (setup.options.grpo.beta != 0.0)
    reference = models::transformer::load(setup.model, device, dtype);
  auto l =
    std::make_unique<models::learner>(std::move(policy), std::move(reference), setup.options);
  if (!setup.resume.empty()) {
    models::load_optimizer_state(
      l->optimizer(), setup.resume,
      "the folder was not written by `pedagogy train` (whose checkpoints always hold "
      "optimizer.safetensors); resume from one that was");
  }
  log::get("learner")->info("learner ready: {} ({} parameters, {}, reference {})", start.string(),
                            l->policy().config().parameter_count(), setup.device,
                            setup.options.grpo.beta != 0.0 ? "loaded" : "none");
  return l;
}

// GRPO (and gated imitation) on this learner's share of the batch.
caf::result<models::learn_report> learn(learner_actor::stateful_pointer<learner_state> self,
                                        const rollout_batch& batch) {
  try {
    auto& s = self->state;
    s.status.micro_done = s.status.micro_total = 0;
    s.learn_asker = caf::actor_cast<caf::actor_addr>(self->current_sender());
    auto report = busy(self, "learning", [&] {
      if (!s.peers)
        return s.learner->learn(batch.sequences);
      std::vector<models::training_sequence> share;
      for (size_t i : learner_share(batch.sequences, s.peers->size(), s.index))
        share.push_back(batch.sequences[i]);
      return s.learner->learn(share, s.peers.get());
    });
    s.status.learn_calls += 1;
    s.status.trained_tokens +=
      static_cast<int64_t>(report.trained_tokens) * std::max<int64_t>(1, s.learner->options().mu);
    return report;
  } catch (const models::non_finite_error& e) {
    // Every rank saw the same summed loss and gradient norm: all of them are here.
    return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
  } catch (const std::exception& e) {
    // The other learners would wait in their next gradient sum: end the job instead.
    if (self->state.peers)
      self->state.peers->abort(fmt::format("learner {} failed: {}", self->state.index, e.what()));
    return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
  }
}

learner_actor::behavior_type learner_behaviour(learner_actor::stateful_pointer<learner_state> self,
                                               std::shared_ptr<models::learner> owned,
                                               learner_setup given) {
  self->state.learner = std::move(owned);
  self->state.weights = std::move(given.weights);
  self->state.peers = std::move(given.peers);
  self->state.index = given.index;
  self->state.spike = given.spike;
  self->state.model = std::move(given.model);
  self->state.device = given.device;
  self->state.heartbeat = given.heartbeat;
  // A long learn() reports its progress to the inspector between micro-batches.
  self->state.learner->on_progress([self](int64_t done, int64_t total) {
    auto& s = self->state;
    s.status.micro_done = done;
    s.status.micro_total = total;
    const auto now = std::chrono::steady_clock::now();
    if (now - s.last_report < s.heartbeat)
      return;
    s.last_report = now;
    if (auto inspector = caf::actor_cast<inspector_actor>(s.inspector))
      self->send(inspector, status_atom::value, current_status(s));
    if (auto asker = caf::actor_cast<caf::actor>(s.learn_asker))
      caf::anon_send(asker, learning_atom::value, done, total);
  });
  return {
    [=](learn_atom, const rollout_batch& batch) { return learn(self, batch); },
    [=](score_atom, const rollout_batch& batch) -> caf::result<std::vector<models::ped_score>> {
      try {
        return busy(self, "scoring",
                    [&] { return self->state.learner->score(batch.sequences, self->state.spike); });
      } catch (const std::exception& e) {
        return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
      }
    },
    [=](publish_atom, int64_t version) -> caf::result<int64_t> {
      if (!self->state.weights)
        return caf::make_error(caf::sec::invalid_argument, "the learner has no weight channel");
      busy(self, "publishing", [&] {
        self->state.weights->offer(self->state.learner->policy().named_parameters(), version);
        return 0;
      });
      self->state.status.weights_version = version;
      return version;
    },
    [=](save_atom, const std::string& dir) -> caf::result<int64_t> {
      try {
        busy(self, "saving", [&] {
          save_checkpoint(self->state, dir);
          return 0;
        });
        return self->state.learner->optimizer().steps();
      } catch (const std::exception& e) {
        return caf::make_error(caf::sec::runtime_error, std::string(e.what()));
      }
    },
    [=](status_atom) -> learner_status {
      // The asker is the inspector: progress reports go there while a learn() runs.
      if (auto sender = self->current_sender())
        self->state.inspector = caf::actor_cast<caf::actor_addr>(sender);
      return current_status(self->state);
    },
  };
}

} // namespace

learner_actor spawn_learner(caf::actor_system& system, const learner_setup& setup) {
  auto l = load_learner(setup);
  return system.spawn<caf::detached>(learner_behaviour,
                                     std::shared_ptr<models::learner>(l.release()), setup);
}

} // namespace pedagogy::actors
