// `pedagogy bench forward`: prefill tokens/s of random-init decoders on the CPU.
#include "bench/bench.hpp"
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>

#include <chrono>
#include <thread>

namespace pedagogy::bench {

namespace {

double prefill_tokens_per_s(const models::transformer& model, int64_t batch, int64_t length,
                            int repeats) {
  at::Tensor ids = at::randint(model.config().vocab_size, {batch, length}, at::kLong);
  at::NoGradGuard no_grad;
  model.forward(ids); // warm-up: allocator, kernels
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    model.forward(ids);
    best = std::min(
      best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return static_cast<double>(batch * length) / best;
}

} // namespace

figures forward(const forward_options& options) {
  const int threads =
    options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  at::manual_seed(0);
  figures f;
  f.title = fmt::format("bench forward: prefill on CPU, qwen2 family, {} thread(s), best of {}",
                        threads, options.repeats);
  struct run {
    const char* name;
    const char* preset;
    at::ScalarType dtype;
    int64_t batch;
    int64_t length;
  };
  for (const run& r :
       {run{"tiny", "tiny", at::kFloat, 8, 256}, run{"small", "small", at::kFloat, 2, 256},
        run{"small_bf16", "small", at::kBFloat16, 2, 256}}) {
    auto config = models::preset_config(models::model_family::qwen2, r.preset, /*vocab_size=*/320);
    auto model = models::transformer::random(config, 0, at::kCPU, r.dtype);
    f.add(fmt::format("{}_prefill_tokens_per_s", r.name),
          prefill_tokens_per_s(model, r.batch, r.length, options.repeats));
    f.notes.push_back(fmt::format("{}: {:.2f}M parameters, {}, batch {} x {} tokens", r.name,
                                  config.parameter_count() / 1e6, at::toString(r.dtype), r.batch,
                                  r.length));
  }
  return f;
}

} // namespace pedagogy::bench
