// The generation engine's scheduler (see engine.hpp): requests, admission under the KV budget,
// one packed forward per step, sessions (token choice, stopping and forks: engine_tokens.cpp).
#include "models/serving/engine.hpp"
#include "models/serving/engine_state.hpp"
#include "models/serving/packed_forward.hpp"
#include "models/tensor/transformer.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace pedagogy::models {

std::string to_string(finish_reason reason) {
  switch (reason) {
    case finish_reason::stop:
      return "stop";
    case finish_reason::length:
      return "length";
    case finish_reason::cancelled:
      return "cancelled";
  }
  return "?";
}

engine::engine(const transformer& model, const tokenizer& tokens, engine_options options)
  : model_(model), tokenizer_(tokens), options_(options) {
  if (options.kv_block_tokens < 1 || options.kv_cache_tokens < options.kv_block_tokens)
    throw input_error("engine options",
                      fmt::format("kv_cache_tokens = {} does not hold one block of {} tokens",
                                  options.kv_cache_tokens, options.kv_block_tokens),
                      "raise kv_cache_tokens; kv_block_tokens must be at least 1");
  pool_ =
    new_kv_pool(model, options.kv_block_tokens, options.kv_cache_tokens / options.kv_block_tokens);
  if (options.kv_preallocate.value_or(!model.device().is_cpu()))
    pool_->allocate_budget();
}

engine::~engine() = default;

// ---- requests ----------------------------------------------------------------------------------

void engine::check(const generation_request& request) const {
  const sampling_params& p = request.params;
  auto bad = [](const std::string& problem, const std::string& hint) {
    throw input_error("generation request", problem, hint);
  };
  if (p.n < 1)
    bad(fmt::format("n = {}", p.n), "ask for at least one sample");
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    bad(fmt::format("temperature = {}", p.temperature), "use 0 (greedy) or a positive number");
  if (p.top_k < 0)
    bad(fmt::format("top_k = {}", p.top_k), "use 0 (off) or a positive number");
  if (!(p.top_p > 0 && p.top_p <= 1))
    bad(fmt::format("top_p = {}", p.top_p), "use a value in (0, 1]; 1 is off");
  if (p.max_new_tokens < 1)
    bad(fmt::format("max_new_tokens = {}", p.max_new_tokens), "allow at least one new token");
  if (static_cast<int64_t>(p.forced_prefix.size()) > p.max_new_tokens)
    bad("the forced prefix is longer than max_new_tokens", "raise max_new_tokens");
  const int64_t vocab = model_.config().vocab_size;
  for (const auto* list : {&request.tokens, &p.forced_prefix, &p.stop_token_ids})
    for (int32_t id : *list)
      if (id < 0 || id >= vocab)
        bad(fmt::format("token id {} is outside the vocabulary [0, {})", id, vocab),
            "encode with the model's own tokenizer");

  size_t history = 0;
  switch (request.mode) {
    case session_mode::none:
      if (!request.session.empty())
        bad("a session is named but the mode is none", "use mode open or resume");
      break;
    case session_mode::open:
      if (request.session.empty() || sessions_.count(request.session) != 0)
        bad(fmt::format("cannot open session '{}': {}", request.session,
                        request.session.empty() ? "no name" : "it exists"),
            "open each session once; continue it with resume");
      break;
    case session_mode::resume: {
      auto it = sessions_.find(request.session);
      if (it == sessions_.end())
        bad(fmt::format("unknown session '{}'", request.session), "open it first");
      if (it->second->busy)
        bad(fmt::format("session '{}' already has a request in flight", request.session),
            "wait for its result before the next turn");
      history = it->second->history.tokens.size();
      break;
    }
  }
  const int64_t context = static_cast<int64_t>(history + request.tokens.size());
  if (context == 0)
    bad("the prompt is empty", "send at least one token");
  if (context + p.max_new_tokens > options_.max_context)
    bad(fmt::format("{} prompt tokens + max_new_tokens {} exceed the context of {} tokens", context,
                    p.max_new_tokens, options_.max_context),
        "shorten the dialog or lower max_new_tokens");
  const int64_t blocks = footprint(context, p);
  if (blocks > pool_->block_budget())
    bad(fmt::format("the request needs {} KV blocks of {} tokens, kv_cache_tokens = {} holds {}",
                    blocks, options_.kv_block_tokens, options_.kv_cache_tokens,
                    pool_->block_budget()),
        "raise kv_cache_tokens or ask for fewer samples");
}

// The most KV blocks a request may hold: its context and generation; for n > 1 the prompt's
// blocks, shared by the samples, and each sample's own from the prompt's last block on (a
// partial last block is copied when a sample first writes into it).
int64_t engine::footprint(int64_t context, const sampling_params& params) const {
  const int64_t bs = options_.kv_block_tokens;
  const int64_t whole = blocks_for(context + params.max_new_tokens, bs);
  return params.n == 1 ? whole : blocks_for(context, bs) + params.n * (whole - context / bs);
}

uint64_t engine::submit(generation_request request) {
  check(request);
  auto r = std::make_unique<request_state>();
  r->id = next_id_++;
  if (request.mode != session_mode::none) {
    auto& slot = sessions_[request.session];
    if (!slot) {
      slot = std::make_unique<session>();
      slot->kv = sequence_kv(pool_);
    }
    r->sess = slot.get();
    r->sess->busy = true;
    auto& h = r->sess->history;
    h.tokens.insert(h.tokens.end(), request.tokens.begin(), request.tokens.end());
    h.sampled.insert(h.sampled.end(), request.tokens.size(), 0);
    h.logprobs.insert(h.logprobs.end(), request.tokens.size(), 0.0f);
    h.versions.insert(h.versions.end(), request.tokens.size(), -1);
  }
  r->request = std::move(request);
  waiting_.push_back(std::move(r));
  return waiting_.back()->id;
}

bool engine::cancel(uint64_t id) {
  for (auto& r : running_)
    if (r->id == id)
      return r->cancelled = true;
  for (auto& r : waiting_)
    if (r->id == id)
      return r->cancelled = true;
  return false;
}

bool engine::has_work() const {
  return !waiting_.empty() || !running_.empty();
}

// ---- admission ---------------------------------------------------------------------------------

int64_t engine::cached_tokens() const {
  int64_t total = 0;
  for (const auto& [name, s] : sessions_)
    total += s->kv.length();
  for (const auto& r : running_)
    for (const auto& s : r->sequences)
      if (s->kv == &s->own)
        total += s->own.length();
  return total;
}

// KV blocks held or promised: every running request's footprint (its session's cache included)
// and the caches of the sessions that are not running, `keep`'s left out.
int64_t engine::occupancy(const session* keep) const {
  int64_t total = 0;
  for (const auto& r : running_)
    total += r->footprint;
  for (const auto& [name, s] : sessions_)
    if (!s->running && s.get() != keep)
      total += static_cast<int64_t>(s->kv.blocks().size());
  return total;
}

// The cache to evict next: of a session that is not running, other than `keep`, idle ones
// before those waiting for admission, least recently used first; null if there is none.
engine::session* engine::eviction_victim(const session* keep) const {
  session* victim = nullptr;
  for (const auto& [name, s] : sessions_) {
    if (s->running || s.get() == keep || s->kv.blocks().empty())
      continue;
    if (victim == nullptr ||
        std::pair(s->busy, s->last_used) < std::pair(victim->busy, victim->last_used))
      victim = s.get();
  }
  return victim;
}

// Evicts caches until r's footprint fits the block budget beside everything else.
bool engine::make_room(const request_state& r) {
  while (occupancy(r.sess) + r.footprint > pool_->block_budget()) {
    session* victim = eviction_victim(r.sess);
    if (victim == nullptr)
      return false;
    victim->kv.clear();
    ++stats_.evictions;
  }
  return true;
}

// Blocks for `tokens` more tokens of a running sequence's cache. Admission keeps every running
// request's footprint available, so the pool has them; were it short, caches of sessions that
// are not running would be evicted, and failing that the sequence waits for a later step.
bool engine::reserve(sequence_kv& kv, int64_t tokens) {
  while (!kv.reserve(tokens)) {
    session* victim = eviction_victim(nullptr);
    if (victim == nullptr)
      return false;
    victim->kv.clear();
    ++stats_.evictions;
  }
  return true;
}

void engine::admit() {
  int64_t running_sequences = 0;
  for (const auto& r : running_)
    running_sequences += std::max<int64_t>(r->request.params.n, 1);
  while (!waiting_.empty()) {
    request_state& r = *waiting_.front();
    const sampling_params& p = r.request.params;
    if (running_sequences + p.n > options_.max_batch_sequences && running_sequences > 0)
      return;
    auto s = std::make_unique<sequence>();
    s->owner = &r;
    s->index = p.n == 1 ? 0 : -1;
    s->rng = sampling_rng(p.seed);
    if (r.sess != nullptr) {
      s->tokens = r.sess->history.tokens;
      s->kv = &r.sess->kv;
    } else {
      s->tokens = r.request.tokens;
      s->own = sequence_kv(pool_);
      s->kv = &s->own;
    }
    r.footprint = footprint(static_cast<int64_t>(s->tokens.size()), p);
    if (!make_room(r)) {
      // check() refused footprints past the budget, and with nothing running all else is evicted.
      PEDAGOGY_CHECK(!running_.empty(), "a request of {} KV blocks does not fit {} free blocks",
                     r.footprint, pool_->block_budget() - occupancy(r.sess));
      return; // wait for running requests to finish
    }
    if (r.sess != nullptr)
      r.sess->running = true;
    stats_.prefill_reused += s->kv->length();
    stats_.prefill_computed += s->pending();
    r.sequences.push_back(std::move(s));
    running_sequences += p.n;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

// ---- the step ----------------------------------------------------------------------------------

std::vector<generation_result> engine::step() {
  const auto start = std::chrono::steady_clock::now();
  ++tick_;
  std::vector<generation_result> results = drain_cancelled_waiting();
  admit();
  for (auto& r : running_)
    if (r->cancelled)
      for (auto& s : r->sequences)
        if (!s->done)
          finish(*s, finish_reason::cancelled);

  // Rows due this step: one for each decoding sequence, then prompt chunks, within the budget.
  std::vector<packed_segment> segments;
  std::vector<sequence*> due;
  std::vector<int64_t> due_rows;
  std::vector<int64_t> tokens;
  std::vector<int64_t> positions;
  int64_t budget = options_.max_batch_tokens;
  for (bool decoding : {true, false}) {
    for (auto& r : running_) {
      for (auto& s : r->sequences) {
        const int64_t pending = s->done ? 0 : s->pending();
        if (pending == 0 || (pending == 1) != decoding || budget == 0)
          continue;
        const int64_t take = std::min(pending, budget);
        if (!reserve(*s->kv, take))
          continue; // no KV blocks for it this step
        const int64_t first = s->kv->length();
        segments.push_back({s->kv, static_cast<int64_t>(tokens.size()), take});
        for (int64_t i = 0; i < take; ++i) {
          tokens.push_back(s->tokens[static_cast<size_t>(first + i)]);
          positions.push_back(first + i);
        }
        budget -= take;
        if (take == pending) {
          due.push_back(s.get());
          due_rows.push_back(static_cast<int64_t>(tokens.size()) - 1);
        }
      }
    }
  }
  if (!tokens.empty()) {
    at::NoGradGuard no_grad;
    // Tokens, positions and the due rows go to the model's device together, once per step.
    const auto N = static_cast<int64_t>(tokens.size());
    const auto D = static_cast<int64_t>(due_rows.size());
    std::vector<int64_t> packed = tokens;
    packed.insert(packed.end(), positions.begin(), positions.end());
    packed.insert(packed.end(), due_rows.begin(), due_rows.end());
    const at::Tensor indices = at::tensor(packed, at::kLong).to(model_.device()); // [2N + D]
    at::Tensor hidden =
      forward_packed(model_, indices.narrow(0, 0, N), indices.narrow(0, N, N), segments); // [N, C]
    at::Tensor logits = model_.logits(hidden.index_select(0, indices.narrow(0, 2 * N, D))); // [D,V]

    // One rule per token to choose (a fork's samples all read their prompt's row), all chosen
    // together on the device; only the chosen ids and log-probs come back.
    std::vector<sequence*> choosing;
    std::vector<token_rule> rules;
    for (size_t i = 0; i < due.size(); ++i) {
      const auto targets = due[i]->index < 0 ? fork(*due[i]->owner) : std::vector{due[i]};
      for (sequence* s : targets) {
        rules.push_back(rule_for(*s, static_cast<int64_t>(i)));
        choosing.push_back(s);
      }
    }
    const std::vector<token_choice> choices = choose_tokens(logits, rules);
    for (size_t i = 0; i < choosing.size(); ++i)
      accept(*choosing[i], choices[i]);
    ++stats_.steps;
  }
  stats_.busy_seconds +=
    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (auto& result : collect())
    results.push_back(std::move(result));
  PEDAGOGY_CHECK(pool_->blocks_used() <= occupancy(nullptr) &&
                   occupancy(nullptr) <= pool_->block_budget(),
                 "KV blocks: {} used, {} accounted for, {} in the budget", pool_->blocks_used(),
                 occupancy(nullptr), pool_->block_budget());
  return results;
}

// A request cancelled before admission never ran: it finishes empty.
std::vector<generation_result> engine::drain_cancelled_waiting() {
  std::vector<generation_result> results;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (!(*it)->cancelled) {
      ++it;
      continue;
    }
    generation_result result{(*it)->id, {}};
    completion empty;
    empty.reason = finish_reason::cancelled;
    result.completions.assign(static_cast<size_t>((*it)->request.params.n), empty);
    if ((*it)->sess != nullptr)
      (*it)->sess->busy = false;
    results.push_back(std::move(result));
    it = waiting_.erase(it);
  }
  return results;
}

// Requests whose samples are all done leave the batch with their results.
std::vector<generation_result> engine::collect() {
  std::vector<generation_result> results;
  for (auto it = running_.begin(); it != running_.end();) {
    request_state& r = **it;
    const bool all_done =
      !r.sequences.empty() && r.sequences.front()->index >= 0 &&
      std::all_of(r.sequences.begin(), r.sequences.end(), [](const auto& s) { return s->done; });
    const bool cancelled_before_fork = r.cancelled && r.sequences.front()->index < 0;
    if (!all_done && !cancelled_before_fork) {
      ++it;
      continue;
    }
    generation_result result{r.id, {}};
    if (cancelled_before_fork) {
      completion empty;
      empty.reason = finish_reason::cancelled;
      result.completions.assign(static_cast<size_t>(r.request.params.n), empty);
      if (r.sess != nullptr)
        r.sess->kv.truncate(std::min<int64_t>(r.sess->kv.length(),
                                              static_cast<int64_t>(r.sess->history.tokens.size())));
    } else {
      for (auto& s : r.sequences)
        result.completions.push_back(std::move(s->out));
    }
    if (r.sess != nullptr) {
      r.sess->busy = false;
      r.sess->running = false;
      r.sess->last_used = tick_;
    }
    results.push_back(std::move(result));
    it = running_.erase(it);
  }
  return results;
}

// ---- sessions, weights, statistics -------------------------------------------------------------

session_history engine::close_session(const std::string& name) {
  auto it = sessions_.find(name);
  if (it == sessions_.end())
    throw input_error("close_session", fmt::format("unknown session '{}'", name),
                      "close each session once");
  if (it->second->busy)
    throw input_error("close_session", fmt::format("session '{}' has a request in flight", name),
                      "close it after its result arrived");
  session_history history = std::move(it->second->history);
  sessions_.erase(it);
  return history;
}

const session_history& engine::history(const std::string& name) const {
  auto it = sessions_.find(name);
  if (it == sessions_.end())
    throw input_error("history", fmt::format("unknown session '{}'", name), "open it first");
  return it->second->history;
}

void engine::weights_updated(int64_t version) {
  version_ = version;
  for (auto& [name, s] : sessions_)
    if (!s->busy)
      s->kv.clear();
}

engine_stats engine::stats() const {
  engine_stats s = stats_;
  s.waiting = static_cast<int64_t>(waiting_.size());
  s.running = 0;
  for (const auto& r : running_)
    for (const auto& seq : r->sequences)
      s.running += seq->done ? 0 : 1;
  s.sessions = static_cast<int64_t>(sessions_.size());
  s.cached_tokens = cached_tokens();
  s.kv_blocks_used = pool_->blocks_used();
  s.kv_blocks_total = pool_->block_budget();
  s.kv_bytes = pool_->bytes();
  return s;
}

} // namespace pedagogy::models
