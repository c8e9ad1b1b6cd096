// Benchmarks behind `pedagogy bench X`: each measures in one run and returns named figures,
// printed as text or, with --json, as one JSON object so scripts can track them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace pedagogy::bench {

struct figures {
  std::string title;
  std::vector<std::pair<std::string, double>> values; // in print order
  std::vector<std::string> notes;                     // one line each, text output only

  void add(std::string name, double value) {
    values.emplace_back(std::move(name), value);
  }
  std::string text() const;
  std::string json() const;
};

struct tokenize_options {
  std::filesystem::path tokenizer; // tokenizer.json or a model directory
  double megabytes = 4.0;          // size of the generated corpus
  uint64_t seed = 1;
  std::filesystem::path corpus; // a text file to encode instead (split into ~4 KB documents)
};
figures tokenize(const tokenize_options& options);

struct forward_options {
  int threads = 0; // 0 = one per core
  int repeats = 3;
};
figures forward(const forward_options& options);

struct generate_options {
  std::string preset = "base";   // model size (init-model presets)
  std::filesystem::path model;   // a model directory to run instead of the preset ("" = preset)
  std::string dtype = "float32"; // "float32" or "bfloat16"
  std::string device = "cpu";    // "cpu", "cuda" or "cuda:N"
  int threads = 0;               // 0 = one per core
  std::vector<int64_t> concurrency = {1, 8, 32, 64}; // requests decoded together, one run each
  int64_t prompt_tokens = 32;                        // per request of the concurrency runs
  int64_t new_tokens = 32;                           // generated per request (no stop token)
  int64_t max_batch_tokens = 512;                    // engine rows per forward
  bool throughput_only = false;                      // skip the sessions and forks parts
};
figures generate(const generate_options& options);

struct classroom_options {
  std::string preset = "base"; // tutor and student size (init-model presets)
  int64_t problems = 4;
  int64_t samples = 4;
  int64_t tokens_per_turn = 16; // replies of 1/8 to 2x this; each final solution this
  // Intra-op threads (process-wide, so per engine). 1 = each role computes on a core of its own,
  // as each has its own GPU in a real placement; 0 = one per core, roles sharing every core.
  int threads = 1;
  std::filesystem::path templates = "prompt_templates";
};
figures classroom(const classroom_options& options);

struct train_options {
  std::string preset = "small"; // learner model size (init-model presets)
  std::string device = "cpu";   // "cpu", "cuda" or "cuda:N"
  int64_t sequences = 8;
  int64_t length = 256;
  int64_t micro_batch = 2;
  int64_t steps = 2;                 // whole training steps of the tiny pipeline to time; 0 = none
  int threads = 0;                   // 0 = one per core
  int64_t vocab = 320;               // the learner model's vocabulary (logits memory grows with it)
  int64_t logprob_chunk = 1024;      // train.logprob_chunk_tokens; 0 = whole logits
  std::string checkpointing = "off"; // train.activation_checkpointing: on | off
  std::string dtype = "float32";     // train.dtype: float32 | bfloat16 (fp32 masters)
  std::filesystem::path config = "config/tiny.toml"; // the pipeline timed (relative paths in it
                                                     // resolve from the working directory)
};
figures train(const train_options& options);

struct sync_options {
  double millions = 100;         // parameters moved per sync (Qwen2.5-0.5B: 494; 7B: 7615)
  int64_t bucket_mb = 256;       // cluster.weight_bucket_mb
  int repeats = 3;               // timed syncs (best counts)
  int round_trips = 2000;        // small actor requests timed, per placement; 0 = none
  std::string device = "cpu";    // where the learner's and the generator's weights live
  std::string dtype = "float32"; // the generator's weights: "float32" or "bfloat16"
  bool local_only = false;       // only the in-process channels: no MPI, no actors
};
// Weight channels (local; mpi between ranks 0 and 1 when started with mpirun -np 2 or more)
// against memcpy on this machine, and a small actor request's round trip in one process vs
// across ranks (TLS, as training uses). Collective: every rank runs it; rank 0's figures count.
// With local_only: one process, the local channel (and on a CUDA device the nccl channel's
// single-rank loopback) against a plain copy on the device; MPI is never started.
figures sync(const sync_options& options);

struct ped_options {
  int64_t steps = 100;        // the rollout budget: what plain GRPO samples in this many steps
  int64_t problems = 4;       // of the recall task, all of them in every step
  int64_t samples = 8;        // per problem and step (also the ped_teacher's)
  int64_t warmup_steps = 450; // the task's copy-skill warm-up
  int64_t eval_samples = 32;  // per problem, to evaluate each mode's policy at the budget
  int threads = 1;            // intra-op threads; 0 = one per core
  std::filesystem::path config = "config/tiny.toml";    // the base of every mode's config
  std::filesystem::path templates = "prompt_templates"; // copied into the task
};
// Pedagogical RL (off vs rescue vs rounds) on the recall task at the same number of rollouts,
// and the scoring pass's share of the step time.
figures ped(const ped_options& options);

struct inspect_options {
  int64_t steps = 6;  // tiny training steps per run (the first, warming up, is not counted)
  int64_t rounds = 2; // runs without and with the inspector, alternating
  int threads = 0;    // intra-op threads; 0 = one per core
  std::filesystem::path config = "config/tiny.toml";
};
// Live inspection's cost per tiny training step: end to end (without vs with the inspector), and
// priced (the CPU time of one status report and one progress message, times a step's count).
figures inspect(const inspect_options& options);

// A varied corpus (prose, numbers, LaTeX, code, CJK, emoji, whitespace runs), split into
// documents of a few kilobytes; deterministic for a seed.
std::vector<std::string> varied_corpus(size_t bytes, uint64_t seed);

// A text file as documents of about 4 KB, cut at line ends.
std::vector<std::string> file_corpus(const std::filesystem::path& path);

} // namespace pedagogy::bench
