// `pedagogy bench tokenize|forward|generate|classroom|train|sync|ped|inspect [--json]`: runs one
// benchmark and prints its figures.
#include "bench/bench.hpp"
#include "launch/commands.hpp"
#include "runtime/errors.hpp"

#include <iostream>

namespace pedagogy::launch {

namespace {

int print(const bench::figures& f, bool json) {
  if (f.title.empty())
    return static_cast<int>(exit_code::ok); // a rank other than 0 of a multi-rank benchmark
  std::cout << (json ? f.json() + "\n" : f.text()) << std::flush;
  return static_cast<int>(exit_code::ok);
}

void add_tokenize(CLI::App* bench, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto t = std::make_shared<bench::tokenize_options>();
  auto* tokenize =
    bench->add_subcommand("tokenize", "Tokenizer MB/s and tokens/s on a varied corpus");
  tokenize->add_option("--tokenizer,-t", t->tokenizer, "tokenizer.json or a model directory")
    ->required();
  tokenize->add_option("--mb", t->megabytes, "Size of the generated corpus in MB")
    ->capture_default_str();
  tokenize->add_option("--corpus", t->corpus, "Encode this UTF-8 text file instead");
  tokenize->add_flag("--json", *json, "Print one JSON object");
  tokenize->callback([t, json, &action] {
    action = [t, json] {
      return print(bench::tokenize(*t), *json);
    };
  });
}

void add_forward(CLI::App* bench, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto f = std::make_shared<bench::forward_options>();
  auto* forward =
    bench->add_subcommand("forward", "Prefill tokens/s on CPU, tiny and ~100M models");
  forward->add_option("--threads", f->threads, "Intra-op threads (0 = one per core)")
    ->capture_default_str();
  forward->add_option("--repeats", f->repeats, "Timed repeats (best counts)")
    ->capture_default_str();
  forward->add_flag("--json", *json, "Print one JSON object");
  forward->callback([f, json, &action] {
    action = [f, json] {
      return print(bench::forward(*f), *json);
    };
  });
}

void add_generate(CLI::App* bench, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto g = std::make_shared<bench::generate_options>();
  auto* generate = bench->add_subcommand(
    "generate", "Engine tokens/s vs concurrency, sessions vs re-sent dialogs, forks vs copies");
  generate->add_option("--preset", g->preset, "Model size: tiny, base (~25M), small (~100M)")
    ->capture_default_str();
  generate->add_option("--dtype", g->dtype, "float32 or bfloat16")
    ->check(CLI::IsMember({"float32", "bfloat16"}))
    ->capture_default_str();
  generate->add_option("--threads", g->threads, "Intra-op threads (0 = one per core)")
    ->capture_default_str();
  generate->add_option("--device", g->device, "cpu, cuda or cuda:N")->capture_default_str();
  generate
    ->add_option("--model", g->model,
                 "Run this model directory (e.g. from init-model) instead of --preset")
    ->check(CLI::ExistingDirectory);
  generate
    ->add_option("--concurrency", g->concurrency,
                 "Requests decoded together, one timed run per value (comma-separated)")
    ->delimiter(',')
    ->check(CLI::Range(int64_t{1}, int64_t{4096}))
    ->capture_default_str();
  generate->add_option("--prompt-tokens", g->prompt_tokens, "Prompt tokens per request")
    ->check(CLI::Range(int64_t{1}, int64_t{8192}))
    ->capture_default_str();
  generate->add_option("--new-tokens", g->new_tokens, "Generated tokens per request")
    ->check(CLI::Range(int64_t{1}, int64_t{8192}))
    ->capture_default_str();
  generate->add_option("--max-batch-tokens", g->max_batch_tokens, "Engine rows per forward")
    ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
    ->capture_default_str();
  generate->add_flag("--throughput-only", g->throughput_only,
                     "Measure only tokens/s against concurrency (no sessions or forks part)");
  generate->add_flag("--json", *json, "Print one JSON object");
  generate->callback([g, json, &action] {
    action = [g, json] {
      return print(bench::generate(*g), *json);
    };
  });
}

void add_classroom(CLI::App* bench, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto c = std::make_shared<bench::classroom_options>();
  auto* classroom = bench->add_subcommand(
    "classroom", "Conversations/s: async conversation actors vs the reference's lock-step phases");
  classroom->add_option("--preset", c->preset, "Tutor/student size: tiny, base (~25M), small")
    ->capture_default_str();
  classroom->add_option("--problems", c->problems, "Problems")->capture_default_str();
  classroom->add_option("--samples", c->samples, "Dialogs per problem")->capture_default_str();
  classroom->add_option("--tokens-per-turn", c->tokens_per_turn, "New tokens per turn/solution")
    ->capture_default_str();
  classroom
    ->add_option("--threads", c->threads,
                 "Intra-op threads per engine (1 = a core per role, 0 = all cores shared)")
    ->capture_default_str();
  classroom->add_option("--templates", c->templates, "Prompt templates folder")
    ->capture_default_str();
  classroom->add_flag("--json", *json, "Print one JSON object");
  classroom->callback([c, json, &action] {
    action = [c, json] {
      return print(bench::classroom(*c), *json);
    };
  });
}

void add_train(CLI::App* bench, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto tr = std::make_shared<bench::train_options>();
  auto* train = bench->add_subcommand(
    "train", "Learner tokens/s (forward, backward, AdamW) and the time split of training steps");
  train->add_option("--preset", tr->preset, "Learner model size: tiny, base (~25M), small (~100M)")
    ->capture_default_str();
  train->add_option("--sequences", tr->sequences, "Sequences per batch")->capture_default_str();
  train->add_option("--length", tr->length, "Tokens per sequence")->capture_default_str();
  train->add_option("--micro-batch", tr->micro_batch, "Sequences per forward/backward")
    ->capture_default_str();
  train->add_option("--steps", tr->steps, "Tiny training steps to time (0 = none)")
    ->capture_default_str();
  train->add_option("--threads", tr->threads, "Intra-op threads (0 = one per core)")
    ->capture_default_str();
  train->add_option("--device", tr->device, "cpu, cuda or cuda:N (the learner alone)")
    ->capture_default_str();
  train->add_option("--vocab", tr->vocab, "Vocabulary of the learner's model")
    ->capture_default_str()
    ->check(CLI::Range(int64_t{64}, int64_t{262144}));
  train
    ->add_option("--logprob-chunk", tr->logprob_chunk,
                 "Tokens whose logits exist at once (0 = a whole micro-batch's)")
    ->capture_default_str()
    ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  train->add_option("--checkpointing", tr->checkpointing, "Recompute each layer in the backward")
    ->capture_default_str()
    ->check(CLI::IsMember({"on", "off"}));
  train->add_option("--dtype", tr->dtype, "Learner weights and compute (bf16 keeps fp32 masters)")
    ->capture_default_str()
    ->check(CLI::IsMember({"float32", "bfloat16"}));
  train->add_option("--config", tr->config, "Config of the timed pipeline")->capture_default_str();
  train->add_flag("--json", *json, "Print one JSON object");
  train->callback([tr, json, &action] {
    action = [tr, json] {
      return print(bench::train(*tr), *json);
    };
  });
}

void add_sync(CLI::App* bench, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto sy = std::make_shared<bench::sync_options>();
  auto* sync = bench->add_subcommand(
    "sync", "Weight-channel GB/s vs memcpy, and actor round trips in one process vs across ranks "
            "(run under mpirun -np 2 for the cross-rank figures)");
  sync
    ->add_option("--millions", sy->millions,
                 "Parameters per sync, in millions (Qwen2.5-0.5B: 494, 7B: 7615)")
    ->capture_default_str();
  sync->add_option("--bucket-mb", sy->bucket_mb, "Broadcast bucket size (cluster.weight_bucket_mb)")
    ->capture_default_str();
  sync->add_option("--repeats", sy->repeats, "Timed syncs (best counts)")->capture_default_str();
  sync
    ->add_option("--round-trips", sy->round_trips, "Actor requests timed per placement (0 = none)")
    ->check(CLI::NonNegativeNumber)
    ->capture_default_str();
  sync->add_option("--device", sy->device, "cpu, cuda or cuda:N (with --local-only)")
    ->capture_default_str();
  sync->add_option("--dtype", sy->dtype, "The generator's weights: float32 or bfloat16")
    ->check(CLI::IsMember({"float32", "bfloat16"}))
    ->capture_default_str();
  sync->add_flag("--local-only", sy->local_only,
                 "Only the in-process weight sync on --device (no MPI, no actors): the local "
                 "channel, and on a GPU the nccl channel's one-rank loopback");
  sync->add_flag("--json", *json, "Print one JSON object");
  sync->callback([sy, json, &action] {
    action = [sy, json] {
      return print(bench::sync(*sy), *json);
    };
  });
}

void add_ped(CLI::App* bench, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto pe = std::make_shared<bench::ped_options>();
  auto* ped = bench->add_subcommand(
    "ped", "Pedagogical RL: reward reached by off vs rescue vs rounds at the same number of "
           "rollouts, and the scoring pass's share of a step");
  ped->add_option("--steps", pe->steps, "Rollout budget, in steps of plain GRPO")
    ->capture_default_str();
  ped->add_option("--problems", pe->problems, "Problems of the recall task")->capture_default_str();
  ped->add_option("--samples", pe->samples, "Samples per problem and step")->capture_default_str();
  ped->add_option("--warmup-steps", pe->warmup_steps, "Copy-skill warm-up steps of the solver")
    ->capture_default_str();
  ped->add_option("--eval-samples", pe->eval_samples, "Samples per problem in the evaluation")
    ->capture_default_str();
  ped->add_option("--threads", pe->threads, "Intra-op threads (0 = one per core)")
    ->capture_default_str();
  ped->add_option("--config", pe->config, "Base config")->capture_default_str();
  ped->add_option("--templates", pe->templates, "Prompt templates folder")->capture_default_str();
  ped->add_flag("--json", *json, "Print one JSON object");
  ped->callback([pe, json, &action] {
    action = [pe, json] {
      return print(bench::ped(*pe), *json);
    };
  });
}

void add_inspect(CLI::App* bench, command_action& action) {
  auto json = std::make_shared<bool>(false);
  auto in = std::make_shared<bench::inspect_options>();
  auto* inspect = bench->add_subcommand(
    "inspect", "Live inspection's cost: tiny training steps without vs with the inspector");
  inspect->add_option("--steps", in->steps, "Steps per run (the first is not timed)")
    ->capture_default_str();
  inspect->add_option("--rounds", in->rounds, "Runs without and with, alternating")
    ->capture_default_str();
  inspect->add_option("--threads", in->threads, "Intra-op threads (0 = one per core)")
    ->capture_default_str();
  inspect->add_option("--config", in->config, "Config of the timed pipeline")
    ->capture_default_str();
  inspect->add_flag("--json", *json, "Print one JSON object");
  inspect->callback([in, json, &action] {
    action = [in, json] {
      return print(bench::inspect(*in), *json);
    };
  });
}

} // namespace

void add_bench_command(CLI::App& app, command_action& action) {
  auto* bench = app.add_subcommand("bench", "Measure speed; every benchmark takes --json");
  bench->require_subcommand(1);
  add_tokenize(bench, action);
  add_forward(bench, action);
  add_generate(bench, action);
  add_classroom(bench, action);
  add_train(bench, action);
  add_sync(bench, action);
  add_ped(bench, action);
  add_inspect(bench, action);
}

} // namespace pedagogy::launch
