// A sequence-classification reward model (see reward_model.hpp).
#include "models/ped/reward_model.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace pedagogy::models {

reward_model::reward_model(std::unique_ptr<transformer> model, std::unique_ptr<tokenizer> tok,
                           chat_format format, int64_t max_length)
  : model_(std::move(model)), tokenizer_(std::move(tok)), format_(std::move(format)),
    max_length_(max_length) {}

reward_model reward_model::load(const std::filesystem::path& dir, at::Device device,
                                int64_t max_length) {
  PEDAGOGY_CHECK(max_length > 0, "a reward model needs a positive max_length");
  // float32 as the reference loads it: scores are compared across tutors to a few decimals.
  auto model = std::make_unique<transformer>(transformer::load(dir, device, at::kFloat));
  model->require_classifier(dir);
  if (model->config().num_labels != 1)
    throw input_error((dir / "config.json").string(),
                      fmt::format("the score head has {} labels", model->config().num_labels),
                      "a reward model scores with one label (id2label of size 1)");
  auto tok = std::make_unique<tokenizer>(tokenizer::from_file(dir / "tokenizer.json"));
  auto format = chat_format::from_model_dir(dir);
  return reward_model(std::move(model), std::move(tok), std::move(format), max_length);
}

std::vector<int32_t> reward_model::tokenize(const std::vector<chat_message>& conversation) const {
  return tokenizer_->encode(format_.render(conversation, false), false);
}

std::vector<reward_score>
reward_model::score(const std::vector<std::vector<chat_message>>& conversations,
                    int64_t batch_tokens) const {
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(conversations.size());
  for (const auto& c : conversations)
    ids.push_back(tokenize(c));
  return score_ids(ids, batch_tokens);
}

std::vector<reward_score>
reward_model::score_ids(const std::vector<std::vector<int32_t>>& sequences,
                        int64_t batch_tokens) const {
  std::vector<reward_score> out(sequences.size());
  // Longest first, so each batch pads little and the largest forward comes first.
  std::vector<size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sequences[a].size() > sequences[b].size(); });
  auto kept = [&](size_t i) {
    return std::min<int64_t>(static_cast<int64_t>(sequences[i].size()), max_length_);
  };
  at::NoGradGuard no_grad;
  const auto device = model_->device();
  size_t begin = 0;
  while (begin < order.size()) {
    const int64_t width = std::max<int64_t>(kept(order[begin]), 1);
    size_t end = begin + 1;
    while (end < order.size() && static_cast<int64_t>(end - begin + 1) * width <= batch_tokens)
      ++end;
    const auto rows = static_cast<int64_t>(end - begin);
    auto ids = at::zeros({rows, width}, at::kLong);
    auto mask = at::zeros({rows, width}, at::kLong);
    std::vector<int64_t> last(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      const size_t i = order[begin + static_cast<size_t>(r)];
      const auto& seq = sequences[i];
      const int64_t n = kept(i);
      PEDAGOGY_CHECK(n > 0, "an empty conversation cannot be scored");
      const auto from = static_cast<int64_t>(seq.size()) - n; // keep the last n tokens
      auto* row = ids[r].data_ptr<int64_t>();
      for (int64_t t = 0; t < n; ++t)
        row[t] = seq[static_cast<size_t>(from + t)];
      mask[r].narrow(0, 0, n).fill_(1);
      last[static_cast<size_t>(r)] = n - 1;
      out[i].tokens = static_cast<int64_t>(seq.size());
      out[i].truncated = from > 0;
    }
    const auto hidden = model_->hidden_states(ids.to(device), mask.to(device), {}, nullptr);
    const int64_t C = hidden.size(2);
    const auto index =
      at::tensor(last, at::kLong).to(device).view({rows, 1, 1}).expand({rows, 1, C});
    const auto pooled = hidden.gather(1, index).squeeze(1); // [rows, C]: each row's last token
    const auto scores = model_->score(pooled).select(1, 0).to(at::kDouble).cpu();
    const auto* s = scores.data_ptr<double>();
    for (int64_t r = 0; r < rows; ++r)
      out[order[begin + static_cast<size_t>(r)]].value = s[r];
    begin = end;
  }
  return out;
}

} // namespace pedagogy::models
