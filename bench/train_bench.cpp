// `pedagogy bench train`: the learner's throughput on a model of a chosen size (forward,
// backward and AdamW on synthetic dialogs, tokens per second), and the time split of whole
// training steps (rollout, learn, weight sync, checkpoint) on the tiny preset's pipeline.
#include "bench/bench.hpp"
#include "bench/device.hpp"
#include "bench/tiny_run.hpp"
#include "classroom/problem_generator.hpp"
#include "config/config.hpp"
#include "jobs/train_local.hpp"
#include "models/learner/learner.hpp"
#include "models/tensor/init_model.hpp"
#include "runtime/errors.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace pedagogy::bench {

namespace {

using clock_type = std::chrono::steady_clock;

// Dialog-shaped sequences: a prompt, then alternating trained (tutor) and context spans.
std::vector<models::training_sequence> synthetic(int64_t count, int64_t length, int64_t vocab) {
  std::vector<models::training_sequence> out;
  uint64_t state = 7;
  for (int64_t i = 0; i < count; ++i) {
    models::training_sequence s;
    for (int64_t t = 0; t < length; ++t) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      s.tokens.push_back(static_cast<int32_t>((state >> 33) % static_cast<uint64_t>(vocab)));
      const bool trained = t >= length / 4 && (t / 32) % 2 == 0;
      s.trained.push_back(trained ? 1 : 0);
      s.behaviour_logprobs.push_back(trained ? -5.0f : 0.0f);
    }
    s.advantage = i % 2 == 0 ? 1.0 : -1.0;
    out.push_back(std::move(s));
  }
  return out;
}

} // namespace

std::vector<nlohmann::json> tiny_steps(const std::filesystem::path& config_file, int64_t steps,
                                       const std::function<void(config::config&)>& adjust) {
  if (!std::filesystem::exists(config_file))
    throw input_error(config_file.string(), "no such config",
                      "run from the repository root or pass --config FILE");
  const auto dir =
    std::filesystem::temp_directory_path() / fmt::format("pedagogy_bench_train_{}", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    std::ofstream problems(dir / "problems.jsonl");
    for (const auto& p : classroom::generate_problems(3, 64))
      problems << classroom::to_jsonl(p) << '\n';
  }
  auto cfg = config::load_file(config_file);
  cfg.tutor.model = (dir / "tutor").string();
  cfg.student.model = (dir / "student").string();
  cfg.data.train = (dir / "problems.jsonl").string();
  cfg.train.max_steps = steps;
  cfg.logging.run_dir = (dir / "run").string();
  cfg.logging.level = "warn";
  cfg.checkpoint.every_steps = 1;
  if (adjust)
    adjust(cfg);
  actors::train_options to;
  to.force = true;
  actors::train(cfg, config::to_toml(cfg), to);
  std::vector<nlohmann::json> out;
  std::ifstream in(dir / "run" / "metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line));
  std::filesystem::remove_all(dir);
  return out;
}

figures train(const train_options& options) {
  const int threads =
    options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(threads);
  const auto device = parse_device(options.device, "flag --device");
  figures f;

  // 1. The learner alone.
  auto config = models::preset_config(models::model_family::qwen2, options.preset, options.vocab);
  models::learner_options lo;
  lo.micro_batch_size = options.micro_batch;
  lo.mu = 1;
  lo.learning_rate = 1e-5;
  lo.logprob_chunk = options.logprob_chunk;
  lo.activation_checkpointing = options.checkpointing == "on"
                                  ? models::learner_options::checkpointing::on
                                  : models::learner_options::checkpointing::off;
  lo.dtype = options.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  models::learner learner(models::transformer::random(config, 0, device, lo.dtype), std::nullopt,
                          lo);
  const auto batch = synthetic(options.sequences, options.length, options.vocab);
  learner.learn({batch.front()}); // warm-up
  synchronize(device);
  const auto start = clock_type::now();
  const auto report = learner.learn(batch);
  synchronize(device); // the last AdamW step may still be queued on a GPU
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  const double tokens = static_cast<double>(options.sequences * options.length);
  f.title = fmt::format("bench train: learner on a {} model ({:.1f}M parameters, vocabulary {}, "
                        "{}, {}, {} thread(s)): {} sequences x {} tokens, micro-batch {}, "
                        "log-prob chunk {}, checkpointing {}; then {} tiny training steps",
                        options.preset, config.parameter_count() / 1e6, options.vocab,
                        options.dtype == "bfloat16" ? "bf16 with fp32 masters" : "fp32",
                        device.is_cpu() ? std::string("CPU") : device.str(), threads,
                        options.sequences, options.length, options.micro_batch,
                        options.logprob_chunk, options.checkpointing, options.steps);
  f.add("learner_tokens_per_s", tokens / seconds);
  f.add("learner_trained_tokens_per_s", report.trained_tokens / seconds);
  f.add("learner_seconds", seconds);
  f.add("parameters_millions", static_cast<double>(config.parameter_count()) / 1e6);
  // The process's peak resident memory so far: model, optimizer and the learner's steps (run
  // the bench once per setting to compare them).
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  f.add("peak_rss_mb", static_cast<double>(usage.ru_maxrss) / 1024.0);
  if (device.is_cuda())
    f.add("device_memory_mb", device_memory_mb(device));

  // 2. Whole steps of the tiny pipeline.
  if (options.steps > 0) {
    const auto steps = tiny_steps(options.config, options.steps, {});
    double rollout = 0, learn = 0, sync = 0, checkpoint = 0, step = 0;
    for (const auto& j : steps) {
      rollout += j["rollout_s"].get<double>();
      learn += j["learn_s"].get<double>();
      sync += j["sync_s"].get<double>();
      checkpoint += j["checkpoint_s"].get<double>();
      step += j["step_s"].get<double>();
    }
    const double n = static_cast<double>(options.steps);
    f.add("step_seconds", step / n);
    f.add("rollout_seconds", rollout / n);
    f.add("learn_seconds", learn / n);
    f.add("sync_seconds", sync / n);
    f.add("checkpoint_seconds", checkpoint / n);
    f.add("rollout_share", rollout / step);
    f.add("learn_share", learn / step);
  }
  return f;
}

} // namespace pedagogy::bench
