// Supervised fine-tuning's loss, steps, validation and checkpoint files (see sft.hpp).
#include "models/sft/sft.hpp"

#include "models/serving/packed_forward.hpp"
#include "models/training/checkpoint_files.hpp"
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>

namespace pedagogy::models {

namespace {

namespace fs = std::filesystem;

at::Tensor long_tensor(const std::vector<int64_t>& values, at::Device device) {
  return at::tensor(values, at::kLong).to(device);
}

// - sum log p(target | its row) over the chosen rows of `hidden` [N, C].
at::Tensor nll_of_rows(const transformer& model, const at::Tensor& hidden,
                       const std::vector<int64_t>& rows, const std::vector<int64_t>& targets) {
  const auto device = hidden.device();
  at::Tensor h = hidden.index_select(0, long_tensor(rows, device));              // [M, C]
  at::Tensor logp = at::log_softmax(model.logits(h).to(at::kFloat), /*dim=*/-1); // [M, V]
  return at::nll_loss(logp, long_tensor(targets, device), /*weight=*/{}, at::Reduction::Sum);
}

// Every example of a packed micro-batch as its own segment of one packed forward.
sft_nll packed_nll(const transformer& model, const std::vector<sft_example>& examples,
                   const sft_micro_batch& batch) {
  std::vector<int64_t> tokens, positions, rows, targets;
  std::vector<sequence_kv> caches; // one pool each: no example sees another's keys
  std::vector<packed_segment> segments;
  for (const auto& row : batch.rows)
    for (size_t k = 0; k < row.size(); ++k)
      caches.push_back(new_sequence_kv(model));
  size_t next = 0;
  for (const auto& row : batch.rows)
    for (size_t i : row) {
      const auto& e = examples[i];
      const auto begin = static_cast<int64_t>(tokens.size());
      for (size_t t = 0; t < e.tokens.size(); ++t) {
        tokens.push_back(e.tokens[t]);
        positions.push_back(static_cast<int64_t>(t));
        if (t > 0 && e.trained[t]) {
          rows.push_back(begin + static_cast<int64_t>(t) - 1); // the row that predicts token t
          targets.push_back(e.tokens[t]);
        }
      }
      segments.push_back({&caches[next++], begin, static_cast<int64_t>(e.tokens.size())});
    }
  sft_nll out;
  out.seen = static_cast<int64_t>(tokens.size());
  out.tokens = static_cast<int64_t>(rows.size());
  const auto device = model.device();
  const at::Tensor hidden =
    forward_packed(model, long_tensor(tokens, device), long_tensor(positions, device), segments);
  out.sum = nll_of_rows(model, hidden, rows, targets);
  return out;
}

// One example per row, right-padded: [B, T] through the ordinary forward.
sft_nll padded_nll(const transformer& model, const std::vector<sft_example>& examples,
                   const sft_micro_batch& batch) {
  size_t longest = 1;
  for (const auto& row : batch.rows)
    for (size_t i : row)
      longest = std::max(longest, examples[i].tokens.size());
  const auto B = static_cast<int64_t>(batch.rows.size());
  const auto T = static_cast<int64_t>(longest);
  at::Tensor ids = at::zeros({B, T}, at::kLong);
  at::Tensor attention = at::zeros({B, T}, at::kLong);
  auto id = ids.accessor<int64_t, 2>();
  auto att = attention.accessor<int64_t, 2>();
  std::vector<int64_t> rows, targets;
  sft_nll out;
  for (int64_t b = 0; b < B; ++b) {
    PEDAGOGY_CHECK(batch.rows[static_cast<size_t>(b)].size() == 1,
                   "a bucketed row holds one example");
    const auto& e = examples[batch.rows[static_cast<size_t>(b)][0]];
    for (size_t t = 0; t < e.tokens.size(); ++t) {
      const auto tt = static_cast<int64_t>(t);
      id[b][tt] = e.tokens[t];
      att[b][tt] = 1;
      if (t > 0 && e.trained[t]) {
        rows.push_back(b * T + tt - 1);
        targets.push_back(e.tokens[t]);
      }
    }
    out.seen += static_cast<int64_t>(e.tokens.size());
  }
  out.tokens = static_cast<int64_t>(rows.size());
  const auto device = model.device();
  const at::Tensor hidden =
    model.hidden_states(ids.to(device), attention.to(device), /*positions=*/{}, nullptr); // [B,T,C]
  out.sum = nll_of_rows(model, hidden.reshape({B * T, hidden.size(2)}), rows, targets);
  return out;
}

int64_t trained_in(const std::vector<sft_example>& examples, const sft_micro_batch& batch) {
  int64_t n = 0;
  for (const auto& row : batch.rows)
    for (size_t i : row)
      n += examples[i].trained_tokens();
  return n;
}

} // namespace

sft_nll micro_batch_nll(const transformer& model, const std::vector<sft_example>& examples,
                        const sft_micro_batch& batch, bool packed) {
  return packed ? packed_nll(model, examples, batch) : padded_nll(model, examples, batch);
}

sft_learner::sft_learner(transformer model, sft_options options)
  : model_(std::move(model)), options_(options) {
  PEDAGOGY_CHECK(model_.dtype() == at::kFloat, "SFT trains float32 weights");
  for (const auto& [name, p] : model_.named_parameters()) {
    at::Tensor t = p; // shares storage: the model trains in place
    t.set_requires_grad(true);
    parameters_.emplace_back(name, t);
  }
  optimizer_ = std::make_unique<adamw>(parameters_, options_.adam);
}

sft_step_report sft_learner::step(const std::vector<sft_example>& examples,
                                  const std::vector<sft_micro_batch>& micro_batches) {
  sft_step_report report;
  for (const auto& m : micro_batches)
    report.trained_tokens += trained_in(examples, m);
  const double total = static_cast<double>(std::max<int64_t>(1, report.trained_tokens));
  optimizer_->zero_grad();
  for (const auto& m : micro_batches) {
    auto nll = micro_batch_nll(model_, examples, m, options_.packed);
    // Each micro-batch weighs its tokens against the whole step's: the token mean of the step.
    (nll.sum / total).backward();
    report.loss += nll.sum.item<double>() / total;
    report.tokens += nll.seen;
  }
  report.grad_norm = clip_grad_norm(parameters_, options_.max_grad_norm);
  if (!std::isfinite(report.loss) || !std::isfinite(report.grad_norm)) {
    optimizer_->zero_grad();
    throw sft_non_finite(fmt::format(
      "{} at optimizer step {} (loss {}, gradient norm {}); the weights were not updated",
      std::isfinite(report.loss) ? "non-finite gradient" : "non-finite loss",
      optimizer_->steps() + 1, report.loss, report.grad_norm));
  }
  report.learning_rate =
    learning_rate(options_.lr_schedule, options_.learning_rate, options_.warmup_steps,
                  optimizer_->steps(), options_.total_steps);
  optimizer_->step(report.learning_rate);
  optimizer_->zero_grad();
  report.optimizer_steps = optimizer_->steps();
  return report;
}

double sft_learner::evaluate(const std::vector<sft_example>& examples,
                             const std::vector<sft_micro_batch>& micro_batches) const {
  at::NoGradGuard no_grad;
  double sum = 0, tokens = 0;
  for (const auto& m : micro_batches) {
    auto nll = micro_batch_nll(model_, examples, m, options_.packed);
    sum += nll.sum.item<double>();
    tokens += static_cast<double>(nll.tokens);
  }
  return tokens > 0 ? sum / tokens : 0.0;
}

void sft_learner::save(const fs::path& dir, const fs::path& tokenizer_dir) const {
  save_training_checkpoint(dir, model_, *optimizer_, tokenizer_dir);
}

void sft_learner::load_optimizer(const fs::path& dir) {
  load_optimizer_state(*optimizer_, dir, "resume from a checkpoint `pedagogy sft` wrote");
}

} // namespace pedagogy::models
