// GRPO passes over a rollout batch (see learner.hpp).
#include "models/learner.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace pedagogy::models {

learner::learner(transformer policy, std::optional<transformer> reference, learner_options options)
  : policy_(std::move(policy)), reference_(std::move(reference)), options_(options) {
  PEDAGOGY_CHECK(options_.grpo.beta == 0.0 || reference_.has_value(),
                 "beta = {} needs a reference model", options_.grpo.beta);
  PEDAGOGY_CHECK(options_.micro_batch_size >= 1 && options_.mu >= 1, "bad learner options");
  PEDAGOGY_CHECK(options_.dtype == at::kFloat || options_.dtype == at::kBFloat16,
                 "the learner computes in float32 or bfloat16, not {}",
                 c10::toString(options_.dtype));
  PEDAGOGY_CHECK(policy_.dtype() == options_.dtype, "the policy is {}, the learner computes in {}",
                 c10::toString(policy_.dtype()), c10::toString(options_.dtype));
  PEDAGOGY_CHECK(!reference_ || reference_->dtype() == options_.dtype,
                 "the reference is {}, the learner computes in {}",
                 reference_ ? c10::toString(reference_->dtype()) : "absent",
                 c10::toString(options_.dtype));
  PEDAGOGY_CHECK(options_.shard_count >= 1 && options_.shard_rank >= 0 &&
                   options_.shard_rank < options_.shard_count,
                 "optimizer shard {} of {}", options_.shard_rank, options_.shard_count);
  using mode = learner_options::checkpointing;
  const auto checkpointing = options_.activation_checkpointing;
  policy_.set_activation_checkpointing(
    checkpointing == mode::on || (checkpointing == mode::auto_ && policy_.device().is_cuda()));
  for (const auto& [name, p] : policy_.named_parameters()) {
    at::Tensor t = p; // shares storage: the model trains in place
    t.set_requires_grad(true);
    parameters_.emplace_back(name, t);
  }
  std::vector<uint8_t> owned;
  if (options_.shard_count > 1) {
    owners_ = shard_owners(parameters_, options_.shard_count);
    for (int64_t owner : owners_)
      owned.push_back(owner == options_.shard_rank ? 1 : 0);
  }
  optimizer_ = std::make_unique<adamw>(parameters_, options_.adam, std::move(owned));
  grads_ = std::make_unique<main_grads>(parameters_);
}

learn_report learner::learn(const std::vector<training_sequence>& batch, data_parallel* peers) {
  const auto start = std::chrono::steady_clock::now();
  if (peers != nullptr && peers->size() <= 1)
    peers = nullptr;
  PEDAGOGY_CHECK(options_.shard_count == 1 ||
                   options_.shard_count == (peers != nullptr ? peers->size() : 1),
                 "the optimizer state is sharded over {} learners, this batch has {}",
                 options_.shard_count, peers != nullptr ? peers->size() : 1);
  learn_report report;
  const auto size = static_cast<size_t>(options_.micro_batch_size);
  std::vector<padded_batch> micro;
  for (size_t begin = 0; begin < batch.size(); begin += size)
    micro.push_back(pad(batch, begin, std::min(batch.size(), begin + size), policy_.device()));
  batch_shape shape;
  double imitated = 0; // sequences trained by imitation, in the whole batch
  shape.micro_batches = static_cast<int64_t>(micro.size());
  for (const auto& m : micro) {
    shape.batch_tokens += m.trained_tokens;
    imitated += m.imitated_sequences;
  }
  shape.batch_sequences = static_cast<int64_t>(batch.size()) - static_cast<int64_t>(imitated);
  if (peers != nullptr) {
    // The loss weights are the whole batch's, so the summed gradients are the whole batch's.
    std::vector<double> counts{shape.batch_tokens, static_cast<double>(shape.batch_sequences),
                               static_cast<double>(shape.micro_batches), imitated};
    peers->sum(counts);
    shape.batch_tokens = counts[0];
    shape.batch_sequences = static_cast<int64_t>(counts[1]);
    shape.micro_batches = static_cast<int64_t>(counts[2]);
    imitated = counts[3];
  }
  report.sequences = shape.batch_sequences + static_cast<int64_t>(imitated);
  report.trained_tokens = shape.batch_tokens;
  report.imitated_sequences = static_cast<int64_t>(imitated);
  if (report.sequences == 0)
    return report;

  // The reference's log-probs do not change between passes.
  std::vector<at::Tensor> reference_logprobs(micro.size());
  if (options_.grpo.beta != 0.0) {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < micro.size(); ++i)
      reference_logprobs[i] =
        sequence_logprobs(*reference_, micro[i], options_.temperature, options_.logprob_chunk);
  }

  // The ratio's denominator: the behaviour log-probs, or the learner's own before any update.
  std::vector<at::Tensor> old_logprobs(micro.size());
  for (size_t i = 0; i < micro.size(); ++i) {
    if (!options_.recompute_old_logprobs) {
      old_logprobs[i] = micro[i].behaviour;
      continue;
    }
    at::NoGradGuard no_grad;
    old_logprobs[i] =
      sequence_logprobs(policy_, micro[i], options_.temperature, options_.logprob_chunk);
  }

  grpo_stats totals;
  double behaviour_gap = 0;
  struct {
    double tokens = 0, weight = 0, below = 0, loss = 0, min = 1;
  } gate;
  double computed_passes = 0;
  // Each pass's statistics add up on the device and reach the host once, at the pass's end:
  // grpo_stats' five sums, then the objective, the behaviour gap and the gate's four sums.
  enum : int64_t {
    objective_at = 5,
    gap_at,
    gate_tokens_at,
    gate_weight_at,
    gate_below_at,
    gate_loss_at,
    sums_size
  };
  const auto device_doubles = at::TensorOptions().dtype(at::kDouble).device(policy_.device());
  for (int64_t pass = 0; pass < options_.mu; ++pass) {
    computed_passes += 1;
    grads_->zero();
    at::Tensor sums = at::zeros({sums_size}, device_doubles);
    at::Tensor gate_min = at::ones({}, device_doubles);
    for (size_t i = 0; i < micro.size(); ++i) {
      const auto& m = micro[i];
      const at::Tensor logp =
        sequence_logprobs(policy_, m, options_.temperature, options_.logprob_chunk);
      // Rows with an imitation weight are imitated; the others are GRPO's.
      const at::Tensor imitating = (m.imitation > 0).to(at::kFloat).unsqueeze(1);
      const at::Tensor grpo_mask = m.mask * (1.0 - imitating);
      auto loss = grpo_micro_batch(logp, old_logprobs[i], reference_logprobs[i], grpo_mask,
                                   m.advantages, options_.grpo, shape);
      at::Tensor micro_objective = loss.objective;
      if (m.imitated_sequences > 0) {
        const at::Tensor imitation_mask = m.mask * imitating;
        const at::Tensor per_row = gated_imitation(logp, imitation_mask, options_.gate);
        micro_objective = micro_objective + (per_row * m.imitation).sum() / imitated;
        at::NoGradGuard no_grad;
        const at::Tensor w = imitation_weights(logp, imitation_mask, options_.gate);
        const at::Tensor on = imitation_mask > 0;
        sums.narrow(0, gate_tokens_at, 4)
          .add_(at::stack(
                  {imitation_mask.sum(), w.sum(), (w < 0.5).logical_and(on).sum(), per_row.sum()})
                  .to(at::kDouble));
        gate_min = at::minimum(gate_min, at::where(on, w, at::ones_like(w)).min().to(at::kDouble));
      }
      micro_objective.backward();
      {
        at::NoGradGuard no_grad;
        sums.narrow(0, 0, 5).add_(loss.sums);
        sums[objective_at].add_(micro_objective.detach().to(at::kDouble));
        if (pass == 0)
          sums[gap_at].add_(((m.behaviour - logp.detach()) * grpo_mask).sum().to(at::kDouble));
      }
      if (progress_)
        progress_(pass * static_cast<int64_t>(micro.size()) + static_cast<int64_t>(i) + 1,
                  options_.mu * static_cast<int64_t>(micro.size()));
    }
    // The pass's one read of its statistics.
    const at::Tensor host = at::cat({sums, gate_min.view({1})}).to(at::kCPU).contiguous();
    const double* v = host.data_ptr<double>();
    double objective = v[objective_at];
    totals.tokens += v[0];
    totals.pg_loss += v[1];
    totals.kl += v[2];
    totals.clipped += v[3];
    behaviour_gap += v[gap_at];
    gate.tokens += v[gate_tokens_at];
    gate.weight += v[gate_weight_at];
    gate.below += v[gate_below_at];
    gate.loss += v[gate_loss_at];
    gate.min = std::min(gate.min, v[sums_size]);
    // The clipping, the sum across ranks, the guard and the optimizer all read float32.
    std::vector<at::Tensor> grads;
    if (peers != nullptr) {
      // A rank whose share left a parameter without gradient still takes part in the sum.
      grads = grads_->all();
      peers->sum(grads);
      std::vector<double> total{objective};
      peers->sum(total);
      objective = total[0];
    } else {
      grads = grads_->arrived();
    }
    const double norm = clip_grad_norm(grads, options_.max_grad_norm);
    if (!std::isfinite(objective) || !std::isfinite(norm)) {
      // Refused before the optimizer sees it: one NaN in AdamW's moments poisons every later step.
      const auto what =
        fmt::format("{} in pass {} of {} (loss {}, gradient norm {})",
                    std::isfinite(objective) ? "non-finite gradient" : "non-finite loss", pass + 1,
                    options_.mu, objective, norm);
      grads_->zero();
      if (!options_.skip_non_finite)
        throw non_finite_error(what + "; the weights were not updated by this pass");
      report.skipped_passes = options_.mu - pass;
      break;
    }
    report.grad_norm += norm;
    report.learning_rate =
      learning_rate(options_.lr_schedule, options_.learning_rate, options_.warmup_steps,
                    optimizer_->steps(), options_.total_steps);
    optimizer_->step(report.learning_rate, grads);
    if (peers != nullptr && options_.shard_count > 1) {
      // ZeRO-1: each learner updated its own parameters; every learner gets all of them.
      at::NoGradGuard no_grad;
      for (int64_t root = 0; root < options_.shard_count; ++root) {
        std::vector<at::Tensor> updated;
        for (size_t k = 0; k < parameters_.size(); ++k)
          if (owners_[k] == root)
            updated.push_back(parameters_[k].second);
        peers->broadcast(updated, root);
      }
    }
    report.loss += objective;
  }
  grads_->zero();
  if (peers != nullptr) {
    std::vector<double> sums{totals.tokens,  totals.pg_loss, totals.kl,
                             totals.clipped, behaviour_gap,  gate.tokens,
                             gate.weight,    gate.below,     gate.loss};
    peers->sum(sums);
    totals.tokens = sums[0];
    totals.pg_loss = sums[1];
    totals.kl = sums[2];
    totals.clipped = sums[3];
    behaviour_gap = sums[4];
    gate.tokens = sums[5];
    gate.weight = sums[6];
    gate.below = sums[7];
    gate.loss = sums[8];
  }
  const double passes = std::max(1.0, static_cast<double>(options_.mu - report.skipped_passes));
  const double tokens = std::max(totals.tokens, 1.0);
  report.loss /= passes;
  report.grad_norm /= passes;
  report.pg_loss = totals.pg_loss / tokens;
  report.kl = totals.kl / tokens;
  report.clip_fraction = totals.clipped / tokens;
  report.behaviour_kl = behaviour_gap / std::max(shape.batch_tokens, 1.0);
  if (imitated > 0) {
    // Gate statistics over every pass computed (a refused one included).
    const double runs = std::max(1.0, gate.tokens);
    report.imitated_tokens = gate.tokens / computed_passes;
    report.gate_mean = gate.weight / runs;
    report.gate_below = gate.below / runs;
    report.gate_min = gate.tokens > 0 ? gate.min : 0.0;
    report.imitation_loss = gate.loss / (imitated * computed_passes);
  }
  report.optimizer_steps = optimizer_->steps();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

std::vector<ped_score> learner::score(const std::vector<training_sequence>& batch,
                                      const spike_options& options) const {
  // Sequences without tokens score G = 0 without a forward (an all-padding row has no attention).
  std::vector<ped_score> out(batch.size());
  std::vector<size_t> rows;
  std::vector<training_sequence> present;
  for (size_t i = 0; i < batch.size(); ++i)
    if (batch[i].tokens.size() >= 2) {
      rows.push_back(i);
      present.push_back(batch[i]);
    }
  const auto size = static_cast<size_t>(options_.micro_batch_size);
  for (size_t begin = 0; begin < present.size(); begin += size) {
    const auto end = std::min(present.size(), begin + size);
    const auto m = pad(present, begin, end, policy_.device());
    const auto scores =
      summarise_scores(score_tokens(policy_, m, options.temperature), m.mask, m.answer, options);
    for (size_t k = 0; k < scores.size(); ++k)
      out[rows[begin + k]] = scores[k];
  }
  return out;
}

} // namespace pedagogy::models
