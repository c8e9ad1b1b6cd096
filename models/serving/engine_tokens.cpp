// The engine's token choice (see engine.hpp): the rule each sequence's next token follows (forced
// prefix or sampling), accepting a token and stopping (end of turn, stop strings, the length
// limit), and forking a shared prefill into n samples.
#include "models/serving/engine.hpp"
#include "models/serving/engine_state.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>

namespace pedagogy::models {

// ---- choosing tokens and stopping --------------------------------------------------------------

// How s chooses its next token from logits row `row`: the next forced token, or a sample that
// takes its draw from the sequence's own generator.
token_rule engine::rule_for(sequence& s, int64_t row) {
  const sampling_params& p = s.owner->request.params;
  if (s.forced < p.forced_prefix.size())
    return forced_rule(row, p.forced_prefix[s.forced], p.temperature);
  return sampling_rule(row, p.temperature, p.top_k, p.top_p, s.rng);
}

void engine::accept(sequence& s, token_choice choice) {
  const sampling_params& p = s.owner->request.params;
  const bool forced = s.forced < p.forced_prefix.size();
  if (forced)
    ++s.forced;
  completion& out = s.out;
  if (out.tokens.empty())
    out.weights_version = version_;
  out.tokens.push_back(choice.token);
  out.logprobs.push_back(choice.logprob);
  out.sampled.push_back(forced ? 0 : 1);
  s.tokens.push_back(choice.token);
  ++stats_.generated;

  const auto& stops = p.stop_token_ids;
  if (!forced && std::find(stops.begin(), stops.end(), choice.token) != stops.end())
    return finish(s, finish_reason::stop);
  if (!p.stop_strings.empty()) {
    const std::string text = tokenizer_.decode(out.tokens);
    for (const auto& stop : p.stop_strings) {
      if (auto at = text.find(stop); !stop.empty() && at != std::string::npos) {
        finish(s, finish_reason::stop);
        out.text = text.substr(0, at);
        return;
      }
    }
  }
  if (static_cast<int64_t>(out.tokens.size()) >= p.max_new_tokens ||
      static_cast<int64_t>(s.tokens.size()) >= options_.max_context)
    finish(s, finish_reason::length);
}

void engine::finish(sequence& s, finish_reason reason) {
  s.done = true;
  completion& out = s.out;
  out.reason = reason;
  std::vector<int32_t> visible = out.tokens;
  const auto& stops = s.owner->request.params.stop_token_ids;
  if (reason == finish_reason::stop && !visible.empty() &&
      std::find(stops.begin(), stops.end(), visible.back()) != stops.end())
    visible.pop_back();
  out.text = tokenizer_.decode(visible);

  session* sess = s.owner->sess;
  if (sess == nullptr || s.kv != &sess->kv)
    return;
  auto& h = sess->history;
  if (reason == finish_reason::cancelled) {
    // What was generated is dropped; so are its keys and values.
    sess->kv.truncate(std::min<int64_t>(sess->kv.length(), static_cast<int64_t>(h.tokens.size())));
    return;
  }
  h.tokens.insert(h.tokens.end(), out.tokens.begin(), out.tokens.end());
  h.sampled.insert(h.sampled.end(), out.sampled.begin(), out.sampled.end());
  h.logprobs.insert(h.logprobs.end(), out.logprobs.begin(), out.logprobs.end());
  for (uint8_t sampled : out.sampled)
    h.versions.push_back(sampled != 0 ? version_ : -1);
}

// The prompt of an n > 1 request is done: each sample gets a copy of its cache and its own seed,
// and chooses its first token from the prompt's logits row.
std::vector<engine::sequence*> engine::fork(request_state& r) {
  std::unique_ptr<sequence> parent = std::move(r.sequences.front());
  r.sequences.clear();
  const sampling_params& p = r.request.params;
  std::vector<sequence*> children;
  for (int64_t i = 0; i < p.n; ++i) {
    auto child = std::make_unique<sequence>();
    child->owner = &r;
    child->index = i;
    child->tokens = parent->tokens;
    child->own = parent->kv->fork();
    child->kv = &child->own;
    child->rng = sampling_rng(p.seed + static_cast<uint64_t>(i));
    children.push_back(child.get());
    r.sequences.push_back(std::move(child));
  }
  return children;
}

} // namespace pedagogy::models
