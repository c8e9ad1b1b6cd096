// The generation engine: continuous batching against sequential greedy decoding without a cache,
// sessions, forks, evictions, seeded sampling, log-probs, stops, cancellation, bad requests, new
// weights, and its KV budget (the sampler and the KV pool have tests of their own).
#include "models/serving/engine.hpp"
#include "models/serving/kv_cache.hpp"
#include "models/serving/sampler.hpp"
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"
#include "tests/support/torch_doctest.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

using namespace pedagogy::models;
using pedagogy::input_error;

namespace {

struct fixture {
  tokenizer tok =
    tokenizer::from_json(byte_level_tokenizer_json(model_family::qwen2), "byte-level");
  transformer model =
    transformer::random(preset_config(model_family::qwen2, "tiny", 320), 17, at::kCPU, at::kFloat);
};

fixture& shared() {
  static fixture f;
  return f;
}

// Greedy decoding the slow, obvious way: the whole sequence through the model for every token.
std::vector<int32_t> greedy_reference(const transformer& model, std::vector<int32_t> context,
                                      int64_t max_new) {
  at::NoGradGuard no_grad;
  std::vector<int32_t> out;
  for (int64_t i = 0; i < max_new; ++i) {
    std::vector<int64_t> ids(context.begin(), context.end());
    at::Tensor logits = model.forward(at::tensor(ids, at::kLong).unsqueeze(0))[0][-1];
    const auto next = static_cast<int32_t>(logits.argmax().item<int64_t>());
    out.push_back(next);
    context.push_back(next);
  }
  return out;
}

// The log-probs (T = 1) of `generated` after `context` under one forward of the whole sequence.
std::vector<float> reference_logprobs(const transformer& model, const std::vector<int32_t>& context,
                                      const std::vector<int32_t>& generated) {
  at::NoGradGuard no_grad;
  std::vector<int64_t> ids(context.begin(), context.end());
  ids.insert(ids.end(), generated.begin(), generated.end());
  at::Tensor logp = at::log_softmax(model.forward(at::tensor(ids, at::kLong).unsqueeze(0))[0], -1);
  std::vector<float> out;
  for (size_t i = 0; i < generated.size(); ++i)
    out.push_back(logp[static_cast<int64_t>(context.size() + i) - 1][generated[i]].item<float>());
  return out;
}

std::vector<int32_t> prompt(int64_t length, int32_t salt) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < length; ++i)
    ids.push_back(static_cast<int32_t>((i * 37 + salt * 11) % 256));
  return ids;
}

generation_request greedy(std::vector<int32_t> tokens, int64_t max_new, std::string session = {},
                          session_mode mode = session_mode::none) {
  generation_request r;
  r.tokens = std::move(tokens);
  r.params.temperature = 0;
  r.params.max_new_tokens = max_new;
  r.session = std::move(session);
  r.mode = mode;
  return r;
}

// Steps until every request finished; results by request id.
std::map<uint64_t, generation_result> drain(engine& e) {
  std::map<uint64_t, generation_result> done;
  for (int guard = 0; e.has_work() && guard < 10000; ++guard)
    for (auto& r : e.step())
      done[r.id] = std::move(r);
  REQUIRE_FALSE(e.has_work());
  return done;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

} // namespace

TEST_CASE("greedy continuous batching equals sequential greedy decoding without a cache") {
  auto& f = shared();
  engine_options options;
  options.max_batch_tokens = 24; // long prompts are prefilled in chunks, beside decoding rows
  engine e(f.model, f.tok, options);

  std::map<uint64_t, std::vector<int32_t>> expected;
  auto submit = [&](std::vector<int32_t> p, int64_t max_new) {
    expected[e.submit(greedy(p, max_new))] = greedy_reference(f.model, p, max_new);
  };
  // Mixed prompt lengths at once...
  for (int64_t length : {1, 7, 30, 3, 55})
    submit(prompt(length, static_cast<int32_t>(length)), 6 + length % 5);
  // ...then staggered arrivals while the first ones decode.
  std::map<uint64_t, generation_result> done;
  for (int i = 0; i < 3; ++i)
    for (auto& r : e.step())
      done[r.id] = std::move(r);
  submit(prompt(40, 99), 9);
  e.step();
  submit(prompt(2, 5), 12);
  for (auto& [id, r] : drain(e))
    done[id] = std::move(r);

  REQUIRE(done.size() == expected.size());
  for (const auto& [id, tokens] : expected) {
    CAPTURE(id);
    CHECK(done[id].completions.at(0).tokens == tokens);
  }
  CHECK(e.stats().prefill_computed == 1 + 7 + 30 + 3 + 55 + 40 + 2);
}

TEST_CASE("sessions continue across turns, forks share a prefill, evicted caches are recomputed") {
  auto& f = shared();
  for (int64_t budget : {int64_t{1} << 20, int64_t{100}}) { // 100 tokens forces evictions
    CAPTURE(budget);
    engine_options options;
    options.max_batch_tokens = 32;
    options.kv_cache_tokens = budget;
    engine e(f.model, f.tok, options);

    // Two dialogs, three turns each, interleaved.
    std::map<std::string, std::vector<int32_t>> context;
    for (int turn = 0; turn < 3; ++turn) {
      std::map<std::string, uint64_t> ids;
      std::map<std::string, std::vector<int32_t>> expected;
      for (std::string name : {"tutor", "student"}) {
        auto said = prompt(10 + turn * 5, name == "tutor" ? 1 : 2);
        auto mode = turn == 0 ? session_mode::open : session_mode::resume;
        context[name] = concat(context[name], said);
        expected[name] = greedy_reference(f.model, context[name], 8);
        ids[name] = e.submit(greedy(said, 8, name, mode));
      }
      auto done = drain(e);
      for (const auto& [name, id] : ids) {
        CAPTURE(name);
        CHECK(done[id].completions.at(0).tokens == expected[name]);
        context[name] = concat(context[name], expected[name]);
      }
    }
    // The session kept the exact tokens: prompts unsampled, generations sampled.
    const auto history = e.close_session("tutor");
    CHECK(history.tokens == context["tutor"]);
    CHECK(std::count(history.sampled.begin(), history.sampled.end(), 1) == 3 * 8);
    if (budget < 1000) {
      CHECK(e.stats().evictions > 0); // the small budget had to evict, and results still match
      continue;                       // and cannot hold four forks
    }

    // n = 4 greedy samples of the student's dialog: one prefill, four identical greedy answers.
    const auto before = e.stats().prefill_computed;
    auto request = greedy(prompt(3, 7), 5, "student", session_mode::resume);
    request.params.n = 4;
    const uint64_t id = e.submit(request);
    auto expected = greedy_reference(f.model, concat(context["student"], prompt(3, 7)), 5);
    auto done = drain(e);
    REQUIRE(done[id].completions.size() == 4);
    for (const auto& c : done[id].completions)
      CHECK(c.tokens == expected);
    // Only the new tokens and the last answer's final token (which has no KV yet) are computed.
    CHECK(e.stats().prefill_computed - before == 3 + 1);
  }
}

TEST_CASE("seeded sampling is reproducible and seeds differ") {
  auto& f = shared();
  auto run = [&](uint64_t seed) {
    engine e(f.model, f.tok, {});
    generation_request r;
    r.tokens = prompt(5, 3);
    r.params.temperature = 1.0;
    r.params.seed = seed;
    r.params.max_new_tokens = 20;
    r.params.n = 2;
    const uint64_t id = e.submit(r);
    return drain(e)[id];
  };
  auto a = run(42);
  auto b = run(42);
  auto c = run(43);
  CHECK(a.completions[0].tokens == b.completions[0].tokens);
  CHECK(a.completions[1].tokens == b.completions[1].tokens);
  CHECK(a.completions[0].tokens != a.completions[1].tokens); // sample i uses seed + i
  CHECK(a.completions[0].tokens != c.completions[0].tokens);
}

TEST_CASE("returned log-probs equal a full forward over the final sequence (1e-4, fp32)") {
  auto& f = shared();
  engine_options options;
  options.max_batch_tokens = 8;
  engine e(f.model, f.tok, options);
  generation_request r;
  r.session = "dialog";
  r.mode = session_mode::open;
  r.tokens = prompt(12, 4);
  r.params.temperature = 0.8;
  r.params.seed = 3;
  r.params.max_new_tokens = 15;
  r.params.forced_prefix = {60, 116, 104}; // forced tokens carry log-probs too, marked unsampled
  e.submit(r);
  drain(e);
  r.mode = session_mode::resume;
  r.tokens = prompt(4, 9);
  e.submit(r);
  drain(e);

  const auto h = e.history("dialog");
  std::vector<int64_t> ids(h.tokens.begin(), h.tokens.end());
  at::NoGradGuard no_grad;
  at::Tensor logp =
    at::log_softmax(f.model.forward(at::tensor(ids, at::kLong).unsqueeze(0))[0] / 0.8, -1);
  double worst = 0;
  int generated = 0;
  for (size_t t = 1; t < h.tokens.size(); ++t) {
    if (h.versions[t] < 0 && h.logprobs[t] == 0.0f)
      continue; // a prompt token
    ++generated;
    const double expected = logp[static_cast<int64_t>(t) - 1][h.tokens[t]].item<double>();
    worst = std::max(worst, std::abs(expected - h.logprobs[t]));
  }
  CHECK(generated == 30);
  CHECK(worst <= 1e-4);
  CHECK(std::count(h.sampled.begin(), h.sampled.end(), 1) == 24); // 2 x (15 - 3 forced)
}

TEST_CASE("stop strings across tokens, stop tokens, and the length limit") {
  auto& f = shared();
  engine e(f.model, f.tok, {});
  // Byte-level: every character is its own token, so "STOP" spans four of them.
  generation_request r = greedy(prompt(3, 1), 30);
  const std::string forced = "hello STOP more";
  r.params.forced_prefix.assign(forced.begin(), forced.end());
  r.params.stop_strings = {"STOP"};
  const uint64_t by_string = e.submit(r);

  auto first = greedy_reference(f.model, prompt(6, 2), 1)[0];
  generation_request s = greedy(prompt(6, 2), 10);
  s.params.stop_token_ids = {first};
  const uint64_t by_token = e.submit(s);
  const uint64_t by_length = e.submit(greedy(prompt(6, 3), 4));

  auto done = drain(e);
  CHECK(done[by_string].completions[0].text == "hello ");
  CHECK(done[by_string].completions[0].reason == finish_reason::stop);
  CHECK(done[by_string].completions[0].tokens.size() == 10);                  // up to the P of STOP
  CHECK(done[by_token].completions[0].tokens == std::vector<int32_t>{first}); // kept in tokens
  CHECK(done[by_token].completions[0].text.empty());                          // not in text
  CHECK(done[by_length].completions[0].reason == finish_reason::length);
  CHECK(done[by_length].completions[0].tokens.size() == 4);
}

TEST_CASE("cancelled requests finish with what they have and leave their session as before") {
  auto& f = shared();
  engine e(f.model, f.tok, {});
  e.submit(greedy(prompt(5, 1), 4, "s", session_mode::open));
  drain(e);
  const auto before = e.history("s").tokens;
  const uint64_t id = e.submit(greedy(prompt(3, 2), 50, "s", session_mode::resume));
  e.step();
  e.step();
  CHECK(e.cancel(id));
  auto done = drain(e);
  CHECK(done[id].completions[0].reason == finish_reason::cancelled);
  CHECK(done[id].completions[0].tokens.size() == 2);
  CHECK(e.history("s").tokens == concat(before, prompt(3, 2))); // the prompt stays, output does not
  // The session goes on as if the cancelled output never happened.
  const uint64_t next = e.submit(greedy(prompt(2, 3), 3, "s", session_mode::resume));
  auto expected = greedy_reference(f.model, concat(concat(before, prompt(3, 2)), prompt(2, 3)), 3);
  CHECK(drain(e)[next].completions[0].tokens == expected);
  // A request cancelled before it ran finishes empty.
  const uint64_t never = e.submit(greedy(prompt(2, 4), 3));
  e.cancel(never);
  CHECK(drain(e)[never].completions[0].tokens.empty());
}

TEST_CASE("bad requests are refused by name and the engine keeps serving") {
  auto& f = shared();
  engine_options options;
  options.max_context = 64;
  engine e(f.model, f.tok, options);
  auto refused = [&](generation_request r, const std::string& part) {
    try {
      e.submit(std::move(r));
    } catch (const input_error& error) {
      CHECK(std::string(error.what()).find(part) != std::string::npos);
      return;
    }
    FAIL("accepted a bad request");
  };
  refused(greedy(prompt(60, 1), 10), "exceed the context of 64 tokens");
  refused(greedy(prompt(5, 1), 3, "ghost", session_mode::resume), "unknown session 'ghost'");
  auto zero = greedy(prompt(5, 1), 3);
  zero.params.n = 0;
  refused(zero, "n = 0");
  auto hot = greedy(prompt(5, 1), 3);
  hot.params.temperature = -1;
  refused(hot, "temperature = -1");
  auto nucleus = greedy(prompt(5, 1), 3);
  nucleus.params.top_p = 0;
  refused(nucleus, "top_p = 0");
  refused(greedy({}, 3), "the prompt is empty");
  refused(greedy({9999}, 3), "outside the vocabulary");

  const uint64_t ok = e.submit(greedy(prompt(5, 1), 3, "busy", session_mode::open));
  refused(greedy(prompt(5, 1), 3, "busy", session_mode::resume), "already has a request in flight");
  refused(greedy(prompt(5, 1), 3, "busy", session_mode::open), "it exists");
  CHECK(drain(e)[ok].completions[0].tokens == greedy_reference(f.model, prompt(5, 1), 3));
  CHECK_THROWS_AS(e.close_session("ghost"), input_error);
}

TEST_CASE("new weights: later tokens carry the new version and idle caches are dropped") {
  auto& f = shared();
  engine e(f.model, f.tok, {});
  e.submit(greedy(prompt(5, 1), 3, "s", session_mode::open));
  drain(e);
  CHECK(e.stats().cached_tokens > 0);
  e.weights_updated(7);
  CHECK(e.stats().cached_tokens == 0);
  const uint64_t id = e.submit(greedy(prompt(2, 2), 3, "s", session_mode::resume));
  auto done = drain(e);
  CHECK(done[id].completions[0].weights_version == 7);
  const auto& h = e.history("s");
  CHECK(h.versions.back() == 7);
  CHECK(h.versions[5] == 0); // the first turn's tokens keep the version that made them
}

TEST_CASE("paged KV under sessions, forks and evictions stays in its budget and decodes greedily") {
  auto& f = shared();
  engine_options options;
  options.max_batch_tokens = 32;
  options.kv_block_tokens = 8;
  options.kv_cache_tokens = 24 * 8 + 5; // 24 blocks; the 5 tokens left over are never used
  engine e(f.model, f.tok, options);

  std::map<uint64_t, std::vector<int32_t>> expected; // every completion of the request
  std::map<uint64_t, std::vector<float>> expected_logprobs;
  std::map<uint64_t, int64_t> samples;
  std::map<uint64_t, generation_result> done;
  int64_t steps = 0, most_used = 0;
  auto run = [&] {
    for (int guard = 0; e.has_work() && guard < 10000; ++guard) {
      for (auto& r : e.step())
        done[r.id] = std::move(r);
      const engine_stats st = e.stats();
      REQUIRE(st.kv_blocks_total == 24);
      REQUIRE(st.kv_blocks_used <= st.kv_blocks_total);
      most_used = std::max(most_used, st.kv_blocks_used);
      ++steps;
    }
    REQUIRE_FALSE(e.has_work());
  };

  // Four dialogs of three turns, every other turn with n = 3 greedy samples (which, being
  // forks, leave the session's history at the prompt), beside one-off n = 2 requests.
  std::map<std::string, std::vector<int32_t>> context;
  for (int turn = 0; turn < 3; ++turn) {
    std::map<std::string, std::pair<uint64_t, int64_t>> asked; // id, n
    for (int d = 0; d < 4; ++d) {
      const std::string name = fmt::format("dialog-{}", d);
      auto said = prompt(8 + 4 * turn + d, static_cast<int32_t>(10 * d + turn));
      context[name] = concat(context[name], said);
      auto request = greedy(said, 6, name, turn == 0 ? session_mode::open : session_mode::resume);
      request.params.n = (turn + d) % 2 == 1 ? 3 : 1;
      const uint64_t id = e.submit(request);
      expected[id] = greedy_reference(f.model, context[name], 6);
      expected_logprobs[id] = reference_logprobs(f.model, context[name], expected[id]);
      samples[id] = request.params.n;
      asked[name] = {id, request.params.n};
    }
    auto one_off = greedy(prompt(20 + turn, 50 + turn), 6);
    one_off.params.n = 2;
    const uint64_t id = e.submit(one_off);
    expected[id] = greedy_reference(f.model, one_off.tokens, 6);
    expected_logprobs[id] = reference_logprobs(f.model, one_off.tokens, expected[id]);
    samples[id] = 2;
    run();
    for (const auto& [name, asked_for] : asked)
      if (asked_for.second == 1)
        context[name] = concat(context[name], expected[asked_for.first]);
  }

  // The tokens, and their log-probs within 1e-4 (fp32): a cache read wrongly shifts these even
  // where the tiny random model's argmax does not move.
  REQUIRE(done.size() == expected.size());
  double worst = 0;
  for (const auto& [id, tokens] : expected) {
    CAPTURE(id);
    REQUIRE(done[id].completions.size() == static_cast<size_t>(samples[id]));
    for (const auto& c : done[id].completions) {
      CHECK(c.tokens == tokens);
      for (size_t i = 0; i < c.logprobs.size() && c.tokens == tokens; ++i)
        worst =
          std::max(worst, std::abs(static_cast<double>(c.logprobs[i]) - expected_logprobs[id][i]));
    }
  }
  CHECK(worst <= 1e-4);
  for (int d = 0; d < 4; ++d) {
    const std::string name = fmt::format("dialog-{}", d);
    CHECK(e.history(name).tokens == context[name]);
  }
  const engine_stats st = e.stats();
  CAPTURE(steps);
  CHECK(st.evictions > 0); // the budget could not keep every dialog's cache
  CHECK(most_used > 24 / 2);
  // Storage never grew past the budget: 2 (K, V) x layers x K x D x 4 bytes per token.
  const auto& c = f.model.config();
  CHECK(st.kv_bytes <= 24 * 8 * 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4);
  // The budget is a bound: a request whose footprint exceeds it is refused, naming the knob.
  try {
    e.submit(greedy(prompt(100, 1), 100)); // 25 blocks
    FAIL("accepted a request larger than the KV budget");
  } catch (const input_error& error) {
    CHECK(std::string(error.what()).find("kv_cache_tokens") != std::string::npos);
  }
}

TEST_CASE("a preallocated KV pool holds its whole budget from the start and decodes the same") {
  auto& f = shared();
  const auto& c = f.model.config();
  const int64_t block_bytes = 8 * 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 4;
  engine_options options;
  options.kv_block_tokens = 8;
  options.kv_cache_tokens = 40 * 8;        // 40 blocks
  engine growing(f.model, f.tok, options); // on the CPU the default grows as caches need it
  options.kv_preallocate = true;
  engine preallocated(f.model, f.tok, options);
  CHECK(growing.stats().kv_bytes == 0);
  CHECK(preallocated.stats().kv_bytes == 40 * block_bytes);

  std::map<uint64_t, std::vector<int32_t>> expected;
  for (int i = 0; i < 4; ++i) {
    auto p = prompt(5 + 3 * i, i + 1);
    auto request = greedy(p, 7);
    request.params.n = i % 2 + 1;
    expected[preallocated.submit(request)] = greedy_reference(f.model, p, 7);
    growing.submit(request);
  }
  auto from_growing = drain(growing);
  auto from_preallocated = drain(preallocated);
  REQUIRE(from_preallocated.size() == expected.size());
  for (const auto& [id, tokens] : expected) {
    CAPTURE(id);
    for (const auto& completion : from_preallocated[id].completions)
      CHECK(completion.tokens == tokens);
    REQUIRE(from_growing.count(id) == 1);
    CHECK(from_growing[id].completions.size() == from_preallocated[id].completions.size());
  }
  // The preallocated storage never grew; the growing one stayed below the budget.
  CHECK(preallocated.stats().kv_bytes == 40 * block_bytes);
  CHECK(growing.stats().kv_bytes > 0);
  CHECK(growing.stats().kv_bytes < 40 * block_bytes);
}
