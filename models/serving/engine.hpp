// The generation engine: many requests decoded together with continuous batching.
//
// Every step() runs one packed forward over the rows that are due: one token for each sequence
// that is decoding, and chunks of prompt for sequences that are prefilling, up to
// max_batch_tokens; requests join and leave between steps. Multi-turn work is organised in
// sessions: a session keeps its exact token history (sampled ids are never re-tokenized) and its
// KV cache between requests, so a new turn prefills only its new tokens. An idle session's cache
// may be evicted (least recently used first) to make room; its next turn recomputes it. A request
// with n > 1 prefills once and forks the cache for its samples.
//
// KV memory is paged (kv_cache.hpp): blocks of kv_block_tokens tokens, at most
// kv_cache_tokens / kv_block_tokens of them. A request is admitted only when the most blocks it
// may hold fit beside those of the running requests and the cached sessions (idle sessions are
// evicted to make room, else it waits), so a running sequence never lacks a block.
//
// No threads, no CAF: the generator actor calls submit/cancel/step between messages. The code:
// engine_scheduler.cpp (requests, admission, the step, sessions), engine_tokens.cpp (token
// choice, stopping, forks), packed_forward.hpp (the model over a packed batch).
#pragma once

#include "models/serving/kv_cache.hpp"
#include "models/serving/sampler.hpp"
#include "models/serving/session_history.hpp"

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pedagogy::models {

class tokenizer;
class transformer;

struct sampling_params {
  double temperature = 1.0;              // 0 = greedy
  int64_t top_k = 0;                     // 0 = off
  double top_p = 1.0;                    // 1 = off
  uint64_t seed = 0;                     // sample i of a request uses seed + i
  int64_t max_new_tokens = 256;          // generated tokens, forced prefix included
  std::vector<int32_t> stop_token_ids;   // kept in the tokens, left out of the text
  std::vector<std::string> stop_strings; // matched across token boundaries; cut from the text
  std::vector<int32_t> forced_prefix;    // generated first, marked as not sampled
  int64_t n = 1;                         // samples of the same prompt
};

enum class session_mode {
  none,   // a one-off prompt
  open,   // start the named session (an error if it exists)
  resume, // continue the named session (an error if it does not exist)
};

struct generation_request {
  std::string session;
  session_mode mode = session_mode::none;
  std::vector<int32_t> tokens; // the prompt, or what the session's history gains before generating
  sampling_params params;
};

enum class finish_reason { stop, length, cancelled };

struct completion {
  std::vector<int32_t> tokens;  // generated ids, forced prefix and stop token included
  std::vector<float> logprobs;  // log_softmax(logits / T) of each token
  std::vector<uint8_t> sampled; // 1 = sampled, 0 = forced
  std::string text;             // decoded, without the stop token or stop string
  finish_reason reason = finish_reason::length;
  int64_t weights_version = 0; // weights that produced the first token
};

struct generation_result {
  uint64_t id = 0;
  std::vector<completion> completions; // n of them, in sample order
};

struct engine_options {
  int64_t max_context = 8192;        // tokens per sequence, prompt and generation
  int64_t max_batch_sequences = 64;  // sequences decoded together
  int64_t max_batch_tokens = 512;    // rows per forward: decode tokens plus prefill chunks
  int64_t kv_cache_tokens = 1 << 20; // tokens all resident caches may hold together (a bound)
  int64_t kv_block_tokens = 16;      // tokens per KV block, the unit caches are allocated in
  // Allocate the whole budget's storage at start (vLLM's way) instead of growing it by doubling
  // as caches need it; unset = at start on a GPU, where growing from half the budget to all of
  // it would hold both at once (1.5x the budget) and the memory plan counts the budget anyway.
  std::optional<bool> kv_preallocate;
};

struct engine_stats {
  int64_t running = 0;          // sequences being generated
  int64_t waiting = 0;          // requests not yet admitted
  int64_t sessions = 0;         // open sessions
  int64_t cached_tokens = 0;    // tokens in KV caches (a fork's shared prompt once per sample)
  int64_t kv_blocks_used = 0;   // KV blocks held by caches
  int64_t kv_blocks_total = 0;  // the block budget: kv_cache_tokens / kv_block_tokens
  int64_t kv_bytes = 0;         // KV storage allocated (grows to the budget as needed)
  int64_t prefill_computed = 0; // prompt tokens run through the model
  int64_t prefill_reused = 0;   // prompt tokens found in a session's cache
  int64_t generated = 0;        // tokens generated
  int64_t steps = 0;            // forwards run
  int64_t evictions = 0;        // session caches dropped to make room
  double busy_seconds = 0;      // time spent in step()
};

class engine {
public:
  engine(const transformer& model, const tokenizer& tokens, engine_options options);
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Queues a request; bad requests throw input_error and change nothing.
  uint64_t submit(generation_request request);
  // Finishes the request at the next step with what it has (reason cancelled).
  bool cancel(uint64_t id);
  // One forward over the work that is due; returns the requests that finished.
  std::vector<generation_result> step();
  bool has_work() const;

  // The session's history; the session and its cache are gone afterwards.
  session_history close_session(const std::string& name);
  const session_history& history(const std::string& name) const;

  // Weights were replaced (between steps): later tokens carry `version`, and idle sessions'
  // caches, computed with the old weights, are dropped.
  void weights_updated(int64_t version);
  int64_t weights_version() const {
    return version_;
  }
  engine_stats stats() const;

private:
  struct session;
  struct sequence;
  struct request_state;

  void check(const generation_request& request) const;
  int64_t footprint(int64_t context, const sampling_params& params) const;
  void admit();
  int64_t occupancy(const session* keep) const;
  session* eviction_victim(const session* keep) const;
  bool make_room(const request_state& r);
  bool reserve(sequence_kv& kv, int64_t tokens);
  int64_t cached_tokens() const;
  void finish(sequence& s, finish_reason reason);
  token_rule rule_for(sequence& s, int64_t row);
  void accept(sequence& s, token_choice choice);
  std::vector<sequence*> fork(request_state& r);
  std::vector<generation_result> collect();
  std::vector<generation_result> drain_cancelled_waiting();

  const transformer& model_;
  const tokenizer& tokenizer_;
  engine_options options_;
  int64_t version_ = 0;
  uint64_t next_id_ = 1;
  uint64_t tick_ = 0;
  std::shared_ptr<kv_pool> pool_; // every cache of this engine, so decode rows batch together
  std::map<std::string, std::unique_ptr<session>> sessions_;
  std::deque<std::unique_ptr<request_state>> waiting_;
  std::vector<std::unique_ptr<request_state>> running_;
  engine_stats stats_;
};

std::string to_string(finish_reason reason);

} // namespace pedagogy::models
