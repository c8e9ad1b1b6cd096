// `pedagogy bench generate`: the engine on the workload it is built for, measured in one run:
// throughput against concurrency, multi-turn sessions against re-sending the dialog, and n = 8
// forked samples against 8 independent requests.
#include "bench/bench.hpp"
#include "bench/device.hpp"
#include "models/serving/engine.hpp"
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace pedagogy::bench {

namespace {

using namespace models;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<int32_t> text_tokens(int64_t length, int64_t salt) {
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < length; ++i)
    ids.push_back(static_cast<int32_t>(32 + (i * 7 + salt * 13) % 90));
  return ids;
}

generation_request request(std::vector<int32_t> tokens, int64_t max_new, uint64_t seed) {
  generation_request r;
  r.tokens = std::move(tokens);
  r.params.temperature = 1.0;
  r.params.seed = seed;
  r.params.max_new_tokens = max_new;
  return r;
}

void drain(engine& e) {
  while (e.has_work())
    e.step();
}

// A model directory's tokenizer, or the family's byte-level one when the directory has none (a
// model written by transformers' save_pretrained): ids past a tokenizer decode to nothing.
tokenizer tokenizer_for(const std::filesystem::path& dir, model_family family) {
  if (std::filesystem::exists(dir / "tokenizer.json"))
    return tokenizer::from_file(dir / "tokenizer.json");
  return tokenizer::from_json(byte_level_tokenizer_json(family), "byte-level");
}

// Throughput against concurrency: c requests of `prompt_tokens` prompt and `new_tokens` new
// tokens each.
void measure_throughput(figures& f, const transformer& model, const tokenizer& tok,
                        const engine_options& eo, const generate_options& options,
                        const at::Device& device) {
  double single = 0;
  for (int64_t c : options.concurrency) {
    engine e(model, tok, eo);
    for (int64_t i = 0; i < c; ++i)
      e.submit(request(text_tokens(options.prompt_tokens, i), options.new_tokens,
                       static_cast<uint64_t>(i)));
    const auto start = std::chrono::steady_clock::now();
    drain(e);
    synchronize(device);
    const double rate = static_cast<double>(e.stats().generated) / seconds_since(start);
    f.add(fmt::format("tokens_per_s_concurrency_{}", c), rate);
    if (c == 1)
      single = rate;
    if (c == 32 && single > 0)
      f.add("speedup_32_vs_1", rate / single);
  }
  f.notes.push_back(
    fmt::format("concurrency c: c requests of {} prompt + {} generated tokens, temperature 1",
                options.prompt_tokens, options.new_tokens));
}

// Eight dialogs of eight turns: each turn adds 24 tokens and generates 16. With sessions a turn
// prefills its new tokens; without, the whole dialog is sent again.
void measure_sessions(figures& f, const transformer& model, const tokenizer& tok,
                      const engine_options& eo) {
  const int64_t dialogs = 8, turns = 8;
  auto dialog_run = [&](bool sessions) {
    engine e(model, tok, eo);
    std::vector<std::vector<int32_t>> history(dialogs);
    const auto start = std::chrono::steady_clock::now();
    for (int64_t t = 0; t < turns; ++t) {
      std::vector<uint64_t> ids;
      for (int64_t d = 0; d < dialogs; ++d) {
        auto said = text_tokens(24, d * 100 + t);
        history[d].insert(history[d].end(), said.begin(), said.end());
        auto r = request(sessions ? said : history[d], 16, static_cast<uint64_t>(d * 100 + t));
        if (sessions) {
          r.session = fmt::format("dialog-{}", d);
          r.mode = t == 0 ? session_mode::open : session_mode::resume;
        }
        ids.push_back(e.submit(std::move(r)));
      }
      while (e.has_work())
        for (auto& result : e.step())
          for (int64_t d = 0; d < dialogs; ++d)
            if (ids[static_cast<size_t>(d)] == result.id)
              history[d].insert(history[d].end(), result.completions[0].tokens.begin(),
                                result.completions[0].tokens.end());
    }
    return std::pair{e.stats().prefill_computed, seconds_since(start)};
  };
  auto [with_prefill, with_time] = dialog_run(true);
  auto [without_prefill, without_time] = dialog_run(false);
  f.add("prefill_tokens_with_sessions", static_cast<double>(with_prefill));
  f.add("prefill_tokens_without_sessions", static_cast<double>(without_prefill));
  f.add("prefill_reduction_sessions", static_cast<double>(without_prefill) / with_prefill);
  f.add("dialog_speedup_sessions", without_time / with_time);
}

// n = 8 samples of one 256-token prompt, forked, against 8 independent requests.
void measure_forks(figures& f, const transformer& model, const tokenizer& tok,
                   const engine_options& eo) {
  auto fork_run = [&](bool forked) {
    engine e(model, tok, eo);
    if (forked) {
      auto r = request(text_tokens(256, 5), 16, 1);
      r.params.n = 8;
      e.submit(std::move(r));
    } else {
      for (uint64_t i = 0; i < 8; ++i)
        e.submit(request(text_tokens(256, 5), 16, 1 + i));
    }
    const auto start = std::chrono::steady_clock::now();
    drain(e);
    return std::pair{e.stats().prefill_computed, seconds_since(start)};
  };
  auto [fork_prefill, fork_time] = fork_run(true);
  auto [independent_prefill, independent_time] = fork_run(false);
  f.add("fork_prefill_reduction", static_cast<double>(independent_prefill) / fork_prefill);
  f.add("fork_speedup", independent_time / fork_time);
}

} // namespace

figures generate(const generate_options& options) {
  const int threads =
    options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  const auto device = parse_device(options.device, "flag --device");
  const at::ScalarType dtype = options.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  const bool from_dir = !options.model.empty();
  auto model = from_dir
                 ? transformer::load(options.model, device, dtype)
                 : transformer::random(preset_config(model_family::qwen2, options.preset, 320), 0,
                                       device, dtype);
  const auto& config = model.config();
  if (config.vocab_size < 122) // text_tokens() uses ids 32..121
    throw input_error(
      options.model.string(),
      fmt::format("a vocabulary of {} is too small for the bench's prompts", config.vocab_size),
      "use a model with at least 122 tokens");
  auto tok = from_dir
               ? tokenizer_for(options.model, config.family)
               : tokenizer::from_json(byte_level_tokenizer_json(model_family::qwen2), "byte-level");
  engine_options eo;
  int64_t most = 0;
  for (int64_t c : options.concurrency)
    most = std::max(most, c);
  eo.max_batch_sequences = std::max<int64_t>(256, most);
  eo.max_batch_tokens = options.max_batch_tokens;
  // Room for twice the largest concurrency's caches (and the sessions and forks parts, which
  // hold a few thousand tokens): on a GPU the engine allocates its whole budget at start.
  eo.kv_cache_tokens =
    std::max<int64_t>(1 << 16, 2 * most * (options.prompt_tokens + options.new_tokens + 16));

  figures f;
  f.title =
    fmt::format("bench generate: {} model ({:.1f}M parameters, {}), {}, {} thread(s)",
                from_dir ? options.model.string() : options.preset, config.parameter_count() / 1e6,
                options.dtype, device.is_cpu() ? std::string("CPU") : device.str(), threads);
  f.add("parameters_millions", static_cast<double>(config.parameter_count()) / 1e6);

  if (!device.is_cpu()) { // the first forwards on a GPU pay for kernel and library set-up
    engine e(model, tok, eo);
    e.submit(request(text_tokens(options.prompt_tokens, 0), 4, 0));
    drain(e);
    synchronize(device);
  }

  measure_throughput(f, model, tok, eo, options, device);
  if (options.throughput_only)
    return f;

  measure_sessions(f, model, tok, eo);
  measure_forks(f, model, tok, eo);
  f.notes.push_back("sessions: 8 dialogs x 8 turns, +24 tokens and 16 generated per turn");
  f.notes.push_back("fork: n = 8 samples of a 256-token prompt vs 8 requests, 16 tokens each");
  return f;
}

} // namespace pedagogy::bench
