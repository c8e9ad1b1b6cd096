// GRPO passes over a rollout batch (see learner.hpp).
#include "models/learner/learner.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace pedagogy::models {

namespace {

// Sums over passes (the gate's minimum is a minimum).
void add(grpo_stats& to, const grpo_stats& from) {
  to.tokens += from.tokens;
  to.pg_loss += from.pg_loss;
  to.kl += from.kl;
  to.clipped += from.clipped;
}
void add(gate_sums& to, const gate_sums& from) {
  to.tokens += from.tokens;
  to.weight += from.weight;
  to.below += from.below;
  to.loss += from.loss;
  to.min = std::min(to.min, from.min);
}

} // namespace

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

// mu passes over the batch, each: forward and backward over its micro-batches (GRPO, and gated
// imitation for the rows that carry an imitation weight), the gradients summed across learners,
// clipped, refused when not finite, then one AdamW step.
learn_report learner::learn(const std::vector<training_sequence>& batch, data_parallel* peers) {
  const auto start = std::chrono::steady_clock::now();
  if (peers != nullptr && peers->size() <= 1)
    peers = nullptr;
  PEDAGOGY_CHECK(options_.shard_count == 1 ||
                   options_.shard_count == (peers != nullptr ? peers->size() : 1),
                 "the optimizer state is sharded over {} learners, this batch has {}",
                 options_.shard_count, peers != nullptr ? peers->size() : 1);
  const micro_batches micro = lay_out(batch, peers);
  learn_report report;
  report.sequences = micro.shape.batch_sequences + static_cast<int64_t>(micro.imitated);
  report.trained_tokens = micro.shape.batch_tokens;
  report.imitated_sequences = static_cast<int64_t>(micro.imitated);
  if (report.sequences == 0)
    return report;
  const fixed_logprobs fixed = fixed_logprobs_of(micro);

  pass_sums totals;
  int64_t computed_passes = 0;
  for (int64_t pass = 0; pass < options_.mu; ++pass) {
    ++computed_passes;
    const pass_sums sums = run_pass(micro, fixed, pass);
    add(totals.grpo, sums.grpo);
    totals.behaviour_gap += sums.behaviour_gap;
    add(totals.gate, sums.gate);
    double objective = sums.objective;
    const std::vector<at::Tensor> grads = reduce(peers, objective);
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
    update(grads, peers, report);
    report.loss += objective;
  }
  grads_->zero();
  finish_report(report, totals, micro, computed_passes, peers);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

learner::micro_batches learner::lay_out(const std::vector<training_sequence>& batch,
                                        data_parallel* peers) const {
  micro_batches out;
  const auto size = static_cast<size_t>(options_.micro_batch_size);
  for (size_t begin = 0; begin < batch.size(); begin += size)
    out.micro.push_back(pad(batch, begin, std::min(batch.size(), begin + size), policy_.device()));
  batch_shape& shape = out.shape;
  shape.micro_batches = static_cast<int64_t>(out.micro.size());
  for (const auto& m : out.micro) {
    shape.batch_tokens += m.trained_tokens;
    out.imitated += m.imitated_sequences;
  }
  shape.batch_sequences = static_cast<int64_t>(batch.size()) - static_cast<int64_t>(out.imitated);
  if (peers != nullptr) {
    // The loss weights are the whole batch's, so the summed gradients are the whole batch's.
    std::vector<double> counts{shape.batch_tokens, static_cast<double>(shape.batch_sequences),
                               static_cast<double>(shape.micro_batches), out.imitated};
    peers->sum(counts);
    shape.batch_tokens = counts[0];
    shape.batch_sequences = static_cast<int64_t>(counts[1]);
    shape.micro_batches = static_cast<int64_t>(counts[2]);
    out.imitated = counts[3];
  }
  return out;
}

learner::fixed_logprobs learner::fixed_logprobs_of(const micro_batches& batch) const {
  const auto& micro = batch.micro;
  fixed_logprobs out;
  // The reference's log-probs do not change between passes.
  out.reference.resize(micro.size());
  if (options_.grpo.beta != 0.0) {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < micro.size(); ++i)
      out.reference[i] =
        sequence_logprobs(*reference_, micro[i], options_.temperature, options_.logprob_chunk);
  }
  // The ratio's denominator: the behaviour log-probs, or the learner's own before any update.
  out.old.resize(micro.size());
  for (size_t i = 0; i < micro.size(); ++i) {
    if (!options_.recompute_old_logprobs) {
      out.old[i] = micro[i].behaviour;
      continue;
    }
    at::NoGradGuard no_grad;
    out.old[i] = sequence_logprobs(policy_, micro[i], options_.temperature, options_.logprob_chunk);
  }
  return out;
}

learner::pass_sums learner::run_pass(const micro_batches& batch, const fixed_logprobs& fixed,
                                     int64_t pass) {
  // The pass's statistics add up on the device and reach the host once, at its end: grpo_stats'
  // five sums, then the objective, the behaviour gap and the gate's four sums; the gate's
  // minimum apart.
  enum : int64_t { objective_at = 5, gap_at, gate_at, sums_size = gate_at + 4 };
  const auto device_doubles = at::TensorOptions().dtype(at::kDouble).device(policy_.device());
  grads_->zero();
  at::Tensor sums = at::zeros({sums_size}, device_doubles);
  at::Tensor gate_min = at::ones({}, device_doubles);
  const auto& micro = batch.micro;
  for (size_t i = 0; i < micro.size(); ++i) {
    const auto& m = micro[i];
    const at::Tensor logp =
      sequence_logprobs(policy_, m, options_.temperature, options_.logprob_chunk);
    // Rows with an imitation weight are imitated; the others are GRPO's.
    const at::Tensor imitating = (m.imitation > 0).to(at::kFloat).unsqueeze(1);
    const at::Tensor grpo_mask = m.mask * (1.0 - imitating);
    auto loss = grpo_micro_batch(logp, fixed.old[i], fixed.reference[i], grpo_mask, m.advantages,
                                 options_.grpo, batch.shape);
    at::Tensor micro_objective = loss.objective;
    if (m.imitated_sequences > 0) {
      const imitation_term term =
        imitation_micro_batch(logp, m, imitating, batch.imitated, options_.gate);
      micro_objective = micro_objective + term.objective;
      at::NoGradGuard no_grad;
      sums.narrow(0, gate_at, 4).add_(term.sums);
      gate_min = at::minimum(gate_min, term.min);
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
  pass_sums out;
  out.grpo = {v[0], v[1], v[2], v[3], v[4]};
  out.objective = v[objective_at];
  out.behaviour_gap = v[gap_at];
  out.gate = {v[gate_at], v[gate_at + 1], v[gate_at + 2], v[gate_at + 3], v[sums_size]};
  return out;
}

std::vector<at::Tensor> learner::reduce(data_parallel* peers, double& objective) {
  // The clipping, the sum across ranks, the guard and the optimizer all read float32.
  if (peers == nullptr)
    return grads_->arrived();
  // A rank whose share left a parameter without gradient still takes part in the sum.
  std::vector<at::Tensor> grads = grads_->all();
  peers->sum(grads);
  std::vector<double> total{objective};
  peers->sum(total);
  objective = total[0];
  return grads;
}

void learner::update(const std::vector<at::Tensor>& grads, data_parallel* peers,
                     learn_report& report) {
  report.learning_rate =
    learning_rate(options_.lr_schedule, options_.learning_rate, options_.warmup_steps,
                  optimizer_->steps(), options_.total_steps);
  optimizer_->step(report.learning_rate, grads);
  if (peers == nullptr || options_.shard_count <= 1)
    return;
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

void learner::finish_report(learn_report& report, pass_sums totals, const micro_batches& batch,
                            int64_t computed_passes, data_parallel* peers) const {
  grpo_stats& grpo = totals.grpo;
  gate_sums& gate = totals.gate;
  if (peers != nullptr) {
    std::vector<double> sums{grpo.tokens,  grpo.pg_loss,         grpo.kl,
                             grpo.clipped, totals.behaviour_gap, gate.tokens,
                             gate.weight,  gate.below,           gate.loss};
    peers->sum(sums);
    grpo.tokens = sums[0];
    grpo.pg_loss = sums[1];
    grpo.kl = sums[2];
    grpo.clipped = sums[3];
    totals.behaviour_gap = sums[4];
    gate.tokens = sums[5];
    gate.weight = sums[6];
    gate.below = sums[7];
    gate.loss = sums[8];
  }
  const double passes = std::max(1.0, static_cast<double>(options_.mu - report.skipped_passes));
  const double tokens = std::max(grpo.tokens, 1.0);
  report.loss /= passes;
  report.grad_norm /= passes;
  report.pg_loss = grpo.pg_loss / tokens;
  report.kl = grpo.kl / tokens;
  report.clip_fraction = grpo.clipped / tokens;
  report.behaviour_kl = totals.behaviour_gap / std::max(batch.shape.batch_tokens, 1.0);
  if (batch.imitated > 0) {
    // Gate statistics over every pass computed (a refused one included).
    const double runs = std::max(1.0, gate.tokens);
    const auto computed = static_cast<double>(computed_passes);
    report.imitated_tokens = gate.tokens / computed;
    report.gate_mean = gate.weight / runs;
    report.gate_below = gate.below / runs;
    report.gate_min = gate.tokens > 0 ? gate.min : 0.0;
    report.imitation_loss = gate.loss / (batch.imitated * computed);
  }
  report.optimizer_steps = optimizer_->steps();
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
