// The config schema: one plain struct per TOML table, every field defaulted.
//
// Defaults follow the Python reference's dataclasses (../shared/reference/classroom.md §5) with
// its dead knobs left out and its known bugs fixed on purpose; where a default differs from the
// reference, the comment says so. Each comment gives the unit and the value that disables the
// knob. The list of keys per table lives in config/fields.hpp; load/show/validate walk it.
//
// Bounds: every integer key has a range in fields.hpp (e.g. at most 256 threads, 1024 samples
// per prompt, a million tokens per sequence, seeds 0..2^53-1), far above real use and below
// what overflows or exhausts a machine. A value outside it is refused with the key, the value,
// the bound and a hint, blamed on where it was written: "file:line:column" for a file,
// "override 'key=value'" for an override (an override holding a line break is refused). Keys
// marked "not built yet" below are kept so that files keep their format, but only their default
// is accepted until the feature that reads them is built.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pedagogy::config {

// ---- enumerations (spelled in TOML exactly as the enumerator names) ----------------------------

enum class backend_kind {
  engine, // our LibTorch generation engine on `device`
  openai, // an OpenAI-compatible HTTP endpoint (vLLM, SGLang, an API), see [<role>.openai]
  rule,   // deterministic rule instead of a model (judge only: the answer-leak check)
};

enum class dtype_kind {
  auto_, // bfloat16 on CUDA, float32 on CPU (spelled "auto")
  float32,
  bfloat16,
};

enum class conversation_type {
  random,    // GUIDED or ATTEMPTED from a stable hash of the problem (same for all G samples)
  guided,    // the tutor speaks first
  attempted, // the student first posts its own attempt
};

enum class verdict_policy {
  reject, // a verdict that never parses counts as REJECT (fixes classroom.md §10.11)
  ok,     // ... counts as OK (the reference's behaviour)
};

enum class answer_check {
  math,  // last \boxed{} compared with numeric/LaTeX normalisation
  exact, // case-insensitive string match of the last \boxed{} (the reference's "Answer")
  none,  // every solution scores 0 (the reference's "None" ablation: judge penalty only)
};

enum class loss_aggregation {
  token_mean,             // mean over every trained token of the whole batch
  sequence_mean,          // mean over sequences of each sequence's token mean
  micro_batch_token_mean, // token mean per micro-batch, then mean of those (the reference)
};

enum class old_logprobs_source {
  auto_,     // recompute when the tutor generator's dtype differs from the learner's
  behaviour, // the log-probs the generator recorded while sampling
  recompute, // the learner's own, with its weights and precision, before the first pass (verl)
};

enum class layer_checkpointing {
  auto_, // on where the learner runs on a GPU, off on a CPU (spelled "auto")
  on,    // recompute each decoder layer in the backward instead of keeping its activations
  off,
};

enum class sft_loss {
  assistant, // loss on the assistant's tokens only (its turns' content and end-of-turn)
  all,       // on every token, as the reference's TRL SFTTrainer does
};

enum class lr_schedule {
  constant, // after warmup
  cosine,   // cosine decay to 0 over the run, after warmup
};

enum class non_finite_policy {
  stop, // a NaN/inf loss or gradient stops the job before the weights change
  skip, // ... skips that step's update (weights unchanged) and training goes on
};

enum class cluster_mode {
  auto_, // mpi when started by mpirun/srun with more than one rank, else local (spelled "auto")
  local, // every actor in this one process
  mpi,   // one process per rank, placement from the role tables
};

enum class weight_channel_kind {
  auto_, // local in one process, nccl with CUDA across ranks, else mpi (spelled "auto")
  local, // in-process copy into the generators' tensors
  mpi,   // bucketed MPI_Bcast of CPU tensors
  nccl,  // bucketed ncclBroadcast of GPU tensors
};

enum class ped_mode {
  off,    // plain GRPO on the trained policy's own samples
  rescue, // GRPO; groups whose every sample failed add the ped_teacher's kept trajectories
  mix,    // GRPO + alpha x imitation of a corpus buffer refreshed every ped.refresh_steps
  rounds, // ped_teacher GRPO on R x G for ped.teacher_steps steps, then its corpus is assimilated
};

enum class ped_policy {
  tutor,  // the tutor of the classroom dialogs (setting A)
  solver, // a solver of the problems, rewarded by the answer check alone (setting B)
};

enum class ped_reward_form {
  product,  // R x G (the blog's form)
  additive, // R - additive_lambda x NLL (the spike-blind ablation)
};

enum class corpus_select {
  best_g, // per problem, the kept trajectory with the highest G
  top_k,  // per problem, the ped.top_k kept trajectories with the highest G
  all,    // every kept trajectory
};

// ---- [<role>.sampling], [<role>.openai], [tutor] / [student] / [judge] --------------------------

struct sampling_config {
  double temperature = 0.9; // softmax temperature; 0 = greedy
  int64_t top_k = 50;       // sample among the k most likely tokens; 0 = off
  double top_p = 1.0;       // nucleus probability mass; 1 = off

  bool operator==(const sampling_config&) const = default;
};

// A call to the endpoint is bounded as a whole: a server that refuses connections or answers
// 429/5xx fails it after max_retries retries (0.5 s backoff doubling: 3.5 s with the defaults, each
// connection attempt at most 5 s); a server that accepts the request and then stalls or trickles
// fails it after timeout_s, which must cover the longest generation the role is asked for. Token
// counts come from the server's `usage`, else from `<role>.model`/tokenizer.json when that exists.
struct openai_config {
  std::string base_url; // e.g. "http://127.0.0.1:8000/v1"; needed for backend "openai"
  std::string model;    // model name sent to the endpoint; "" = the role's `model`
  std::string api_key_env = "OPENAI_API_KEY"; // environment variable holding the key; "" = no key
  int64_t max_concurrency = 64;               // requests in flight at once
  double timeout_s = 120.0; // seconds for the whole call, retries and backoff included
  int64_t max_retries = 3;  // retries with exponential backoff; 0 = none
  bool send_top_k = true;   // send sampling.top_k (vLLM, SGLang); false for endpoints refusing it

  bool operator==(const openai_config&) const = default;
};

// One generating role. The tutor is trainable; student and judge are frozen.
struct role_config {
  std::string model; // Hugging Face model directory (local path, no download)
  // When `model` does not exist, create a random-init model there ("<family>:<preset>", e.g.
  // "qwen2:tiny", as `pedagogy init-model`), unless it reads as org/name (a hub id: exit 2 with
  // the download command); "" = the model must exist.
  std::string init;
  backend_kind backend = backend_kind::engine; // engine | openai | rule (rule: judge only)
  // "auto" (cuda:<local rank> when there is a GPU, else cpu), "cpu", "cuda", "cuda:N".
  std::string device = "auto";
  dtype_kind dtype = dtype_kind::auto_; // weights and compute dtype of the engine
  int64_t max_context = 8192;           // tokens per sequence (prompt + generated)
  int64_t max_batch_sequences = 256;    // sequences decoded together per engine step
  int64_t kv_cache_tokens = 0;  // KV-cache budget in tokens; 0 = max_batch_sequences x max_context
  int64_t kv_block_tokens = 16; // tokens per KV-cache block (the paged cache's unit)
  int64_t replicas = 1;         // generator replicas; more than 1 needs that many `ranks`
  std::vector<int64_t> ranks;   // MPI rank of each replica (cluster.mode = "mpi"); [] = rank 0
  sampling_config sampling;     // [<role>.sampling]
  openai_config openai;         // [<role>.openai], used when backend = "openai"

  // The KV-cache budget in effect: kv_cache_tokens, or its default.
  int64_t kv_budget() const {
    return kv_cache_tokens > 0 ? kv_cache_tokens : max_batch_sequences * max_context;
  }

  bool operator==(const role_config&) const = default;
};

// ---- [classroom] -------------------------------------------------------------------------------

struct classroom_config {
  // The dialog ends after this many tutor turns (the reference's max_turns=15 messages).
  int64_t max_tutor_turns = 8;
  int64_t max_tokens_in_conversation = 8192; // content tokens of all messages; more ends the dialog
  int64_t max_tokens_per_turn = 1024;        // new tokens per tutor or student turn
  int64_t max_tokens_per_student_attempt = 3900; // new tokens per final (or pre-dialog) solution
  int64_t max_tokens_per_judge_attempt = 2048;   // new tokens per judge verdict
  int64_t number_student_attempts = 8;           // K solutions sampled after the dialog
  int64_t number_judge_attempts = 2;             // verdicts per judge rule; 0 = no judging
  int64_t judge_parse_rounds = 5;                // re-ask rounds for verdicts that did not parse
  // What a verdict that still does not parse after the rounds counts as.
  verdict_policy unparsed_verdict = verdict_policy::reject;
  // Judge rules, run in this order; the template of each is <templates_dir>/judges/<rule>.txt.
  std::vector<std::string> judge_rules = {"does_not_leak_answer", "follows_pedagogical_values"};
  // Student personas; the template of each is <templates_dir>/personas/<name>.txt.
  std::vector<std::string> personas = {"simple_student"};
  // Names given to the student, chosen per problem; "" = an unnamed student.
  std::vector<std::string> student_names = {"Alex",  "Jamie",  "Taylor", "Jordan", "Sam",
                                            "Casey", "Morgan", "Riley",  ""};
  conversation_type type = conversation_type::random; // random | guided | attempted
  bool use_thinking = false;                          // tell the tutor about hidden <think> blocks
  bool force_thinking = false;                        // start every tutor turn with "<think>"
  // false = hard mode (a rejected dialog scores -lambda, no solutions); true = soft (r_sol -
  // lambda).
  bool ignore_rejected_judge = false;
  double rejection_penalty = 0.25; // lambda: subtracted when any judge rejects; 0 = none
  std::string templates_dir = "prompt_templates"; // prompt templates folder
  int64_t scenario_seed = 0; // seed of the stable hash choosing type, name and persona per problem
  // Dialogs running at once in a rollout (the rest wait their turn, so memory stays flat);
  // 0 = twice the tutor's batch capacity (max_batch_sequences, or openai.max_concurrency).
  int64_t max_dialogs_in_flight = 0;

  bool operator==(const classroom_config&) const = default;
};

// ---- [reward] ----------------------------------------------------------------------------------

struct reward_config {
  answer_check check = answer_check::math; // math | exact | none
  double end_marker_bonus = 0.1;           // added when <end_of_conversation> appears; 0 = off
  // Subtracted when a tutor turn reaches max_tokens_per_turn - 1 tokens; 0 = off.
  double length_penalty = 0.5;
  // Subtracted per tutor turn whose <think> tags do not balance; 0 = off.
  double thinking_unbalanced_penalty = 0.5;
  // Times the share of tutor turns that use a closed <think> block; 0 = off.
  double thinking_bonus = 0.5;

  bool operator==(const reward_config&) const = default;
};

// ---- [train] -----------------------------------------------------------------------------------

struct train_config {
  int64_t problems_per_step = 16;  // distinct problems per rollout batch
  int64_t samples_per_problem = 8; // G: dialogs per problem (the GRPO group)
  int64_t micro_batch_size = 2;    // sequences per forward/backward; gradients accumulate
  int64_t mu = 2;                  // optimizer passes over each rollout batch
  double learning_rate = 5e-7;     // AdamW peak learning rate
  lr_schedule schedule = lr_schedule::constant; // constant | cosine
  int64_t warmup_steps = 0;                     // linear warmup, optimizer steps; 0 = none
  double weight_decay = 0.0;                    // AdamW decoupled weight decay; 0 = off
  double adam_beta1 = 0.9;                      // AdamW first-moment decay
  double adam_beta2 = 0.999;                    // AdamW second-moment decay
  double adam_eps = 1e-8;                       // AdamW denominator epsilon
  double max_grad_norm = 1.0;                   // global gradient-norm clip; 0 = off
  double beta = 0.001;       // k3 KL weight to the frozen reference; 0 = no reference model
  double epsilon = 0.2;      // PPO clip range below 1
  double epsilon_high = 0.0; // PPO clip range above 1; 0 = same as epsilon
  bool scale_rewards = true; // divide advantages by the group's unbiased std + std_eps
  double std_eps = 1e-4;     // added to the group std
  // token_mean | sequence_mean | micro_batch_token_mean (the reference's).
  loss_aggregation aggregation = loss_aggregation::token_mean;
  int64_t epochs = 1;        // passes over the training problems
  int64_t max_steps = 0;     // stop after this many rollout steps; 0 = when the epochs are done
  int64_t max_staleness = 0; // 0 = on-policy; 1 = the next rollouts overlap learning
  int64_t seed = 42;         // data order, sampling seeds, initialisation
  // What a NaN/inf loss or gradient does: stop | skip (the step's update; weights unchanged).
  non_finite_policy on_non_finite = non_finite_policy::stop;
  // Tokens whose logits exist at once when the learner takes log-probs; 0 = a whole micro-batch
  // (at a 152k vocabulary, 8k tokens of fp32 logits are 5 GB).
  int64_t logprob_chunk_tokens = 1024;
  // The PPO ratio's denominator: auto | behaviour | recompute. With a bf16 generator and an fp32
  // learner the behaviour log-probs differ from the learner's, so the first pass's ratio is not 1;
  // recompute takes them with the learner's weights before the first pass. behaviour_kl is logged
  // either way.
  old_logprobs_source old_logprobs = old_logprobs_source::auto_;
  // auto | on | off: recompute each decoder layer in the backward (less memory, ~1/3 more compute).
  layer_checkpointing activation_checkpointing = layer_checkpointing::auto_;
  // The learner's weights and compute: auto (bfloat16 on a GPU, float32 on a CPU) | float32 |
  // bfloat16. bfloat16 keeps float32 master weights and AdamW moments in the optimizer.
  dtype_kind dtype = dtype_kind::auto_;
  // ZeRO-1: data-parallel learners split the optimizer state (masters and moments) between them
  // instead of each holding all of it; false = every learner keeps a full copy.
  bool shard_optimizer = true;

  bool operator==(const train_config&) const = default;
};

// ---- [data] / [eval] ---------------------------------------------------------------------------
//
// Numeric answers in the JSONL keep their digits as written (123456789012345678901234567890,
// 0.1, 1e5).

struct data_config {
  std::string train = "data/problems_train.jsonl"; // training problems, JSONL
  std::string problem_field = "problem";           // JSON field holding the problem text
  std::string answer_field = "answer";             // JSON field holding the reference answer
  // Use a seeded sample (train.seed) of this many training problems, kept in file order; 0 = all.
  int64_t max_problems = 0;
  bool shuffle = true; // shuffle the problems with train.seed

  bool operator==(const data_config&) const = default;
};

// `pedagogy eval` (reference/classroom.md §5.3, §6): the problems are a seeded sample (train.seed)
// and every dialog runs in soft mode, whatever [classroom] says, so each gets every judge and K =
// classroom.number_student_attempts solutions.
struct eval_config {
  std::string problems = "data/problems_test.jsonl"; // JSONL, field names as in [data]
  int64_t max_problems = 500;                        // evaluate at most this many; 0 = all
  int64_t samples_per_problem = 1;                   // dialogs per problem
  bool pre_dialog_attempts = true; // also measure the solve rate before the dialog
  // The pedagogical reward model: a Hugging Face directory of a Qwen2ForSequenceClassification
  // model (one label, last-token pooling, raw logit), scoring every tutor turn; "" = not scored.
  // The reference's is eth-nlped/Qwen2.5-1.5B-pedagogical-rewardmodel.
  std::string reward_model;
  std::string reward_model_device = "cpu"; // "cpu", "cuda", "cuda:N" or "auto"
  int64_t reward_model_max_length = 12000; // tokens; a longer input is scored on its last ones
  int64_t solve_samples = 8;               // eval --solve: solutions per problem (pass@1..pass@k)

  bool operator==(const eval_config&) const = default;
};

// ---- [sft]: supervised fine-tuning of [tutor].model on chat JSONL (`pedagogy sft`) --------------
//
// The optimizer's betas, eps, weight decay and gradient clip come from [train], the checkpoints'
// cadence and count from [checkpoint] (in optimizer steps), the output from [logging].run_dir.

struct sft_config {
  std::string train;          // chat JSONL: one example (a list of messages) per line
  std::string val;            // held-out chat JSONL; "" = val_fraction of `train`
  double val_fraction = 0.05; // held out of `train` when `val` is ""; 0 = no validation
  std::string messages_field = "messages"; // the list of {role, content} (Pedagogical-SFT:
                                           // "conversation")
  sft_loss loss_on = sft_loss::assistant;  // assistant | all (the reference trains on all tokens)
  int64_t max_length = 4096;    // tokens per example; a longer one is refused, naming its line
  bool pack = true;             // pack examples into rows of max_length; false = length buckets
  int64_t micro_batch_size = 1; // rows per forward/backward
  int64_t gradient_accumulation = 16; // micro-batches per optimizer step
  double learning_rate = 2e-5;        // peak (the paper's SFT baseline: 2e-5)
  lr_schedule schedule = lr_schedule::cosine;
  double warmup_ratio = 0.03; // linear warmup over this fraction of the optimizer steps
  int64_t epochs = 1;
  int64_t max_steps = 0;        // optimizer steps; 0 = until the epochs are done
  int64_t val_every_steps = 50; // validation loss every N optimizer steps (and at the end); 0 = end
  int64_t max_examples = 0;     // use the first N training examples; 0 = all

  bool operator==(const sft_config&) const = default;
};

// ---- [cluster] ---------------------------------------------------------------------------------

struct cluster_config {
  cluster_mode mode = cluster_mode::auto_;                         // auto | local | mpi
  weight_channel_kind weight_channel = weight_channel_kind::auto_; // auto | local | mpi | nccl
  std::vector<int64_t> learner_ranks; // ranks running a learner; empty = rank 0 only
  // Where every rank publishes its actors (TLS, this job's key only): "" = all interfaces,
  // reached by the node's host name; "127.0.0.1" keeps a one-node job off the network.
  std::string host;
  // First TCP port: rank r publishes its actors on port + r; 0 = any free. Every rank's port must
  // lie within 1024..65535.
  int64_t port = 0;
  int64_t scheduler_threads = 0; // CAF worker threads; 0 = one per core
  int64_t torch_threads = 0;     // intra-op threads per engine on CPU; 0 = one per core
  // A request between actors (a generation, learning, a weight sync, a save) not answered in this
  // many seconds fails: a generation is retried (then its dialog fails), anything else stops the
  // job. Nothing waits forever on a peer.
  double request_timeout_s = 1800.0;
  int64_t weight_bucket_mb = 256;      // weight broadcast bucket size, MiB
  double collective_timeout_s = 600.0; // a collective stuck this long stops the job; 0 = never
  // A rank that answers no ping for this many seconds (stopped, frozen, cut off) ends the job at
  // once, naming its rank and roles; the last checkpoint stays intact. Pings are answered even
  // while the rank's generators and learner compute.
  double unresponsive_timeout_s = 60.0;
  // Memory of each GPU, GiB, for the memory plan printed at the start of a job: a plan that needs
  // more is refused before any model loads. 0 = what the device reports (on a CPU: not checked).
  double device_memory_gib = 0;

  bool operator==(const cluster_config&) const = default;
};

// ---- [logging] / [checkpoint] / [inspect] -------------------------------------------------------

struct logging_config {
  std::string level = "info"; // trace|debug|info|warn|error|off, or per logger: "info,engine=debug"
  std::string run_dir = "runs/pedagogy"; // dialogs, metrics and the log file go here
  bool log_file = true;                  // also write <run_dir>/pedagogy.log
  bool save_dialogs = true;              // write every dialog record to <run_dir>/dialogs.jsonl
  int64_t print_every_steps = 1;         // progress line every N steps; 0 = never
  double progress_s = 30;                // within a step: a progress line in the log this often

  bool operator==(const logging_config&) const = default;
};

struct checkpoint_config {
  std::string dir;            // "" = <run_dir>/checkpoints
  int64_t every_steps = 10;   // save every N rollout steps (and at the end); 0 = only at the end
  int64_t keep_last = 3;      // keep the newest N checkpoints; 0 = keep all
  bool save_optimizer = true; // also save optimizer state; not built yet: true only

  bool operator==(const checkpoint_config&) const = default;
};

struct inspect_config {
  bool enabled = true;            // serve live actor status over HTTP on rank 0
  std::string host = "127.0.0.1"; // listen address; "0.0.0.0" exposes it (then a token is needed)
  int64_t port = 8765;            // listen port; 0 = any free port (printed at start)
  // Every request must carry it (Authorization: Bearer, or ?token=); "" = none, which only a
  // loopback host allows. PEDAGOGY_INSPECT_TOKEN in the environment overrides it.
  std::string token;
  int64_t heartbeat_ms = 1000; // how often every actor is asked for its status, milliseconds
  double unresponsive_s = 10;  // an actor silent this long is shown as unresponsive, seconds
  int64_t keep_dialogs = 20;   // finished dialogs kept for /dialogs (the newest)
  double linger_s = 0;         // keep serving this long after the run ends; -1 = until a signal

  bool operator==(const inspect_config&) const = default;
};

// ---- [ped]: privileged-information Pedagogical RL
// ------------------------------------------------ Chakraborty, Ziems et al. 2026
// (../shared/reference/privileged_pedagogical_rl.md). The ped_teacher is the trained policy with
// the problem's answer in its system prompt; the ped_learner is the policy itself, which never sees
// it. Values marked "consensus" come from the three public re-implementations the spec compares
// (the blog's own were not recovered).

struct ped_config {
  ped_mode mode = ped_mode::off;         // off | rescue | mix | rounds
  ped_policy policy = ped_policy::tutor; // tutor | solver: whose tokens are trained
  double beta = 5.0;                     // soft-max sharpness of G (the blog's example value)
  double lambda = 0.5;                   // G's penalty strength (consensus: 0.2, 0.5, 1.0 seen)
  double max_gap = 0.0;                  // clip each token's gap, nats; 0 = no clip (verl's option)
  double score_temperature = 1.0;        // the gap is taken on logits / this (spec §3.5: 1)
  ped_reward_form reward = ped_reward_form::product; // the ped_teacher's reward: product | additive
  double additive_lambda = 0.5; // NLL weight of the additive ablation (PedRL's 0.5)
  double kappa = 2.0;           // gate slope (consensus: 2, 2, 1 seen)
  double gamma = -3.5;          // gate midpoint, log-prob (consensus: -3.5, -4, -8 seen)
  bool gating = true;           // false: plain rejection-sampling SFT (the ablation)
  double alpha = 0.5;           // weight of the imitation loss beside GRPO's (rescue, mix)
  int64_t teacher_samples = 4;  // ped_teacher samples per problem (consensus K = 4)
  corpus_select select = corpus_select::best_g; // which kept trajectories are imitated
  int64_t top_k = 2;                            // per problem, with select = "top_k"
  double min_g = 0.0;                           // keep only trajectories with G >= this
  bool leak_filter = true;            // tutor: drop ped_teacher dialogs that state the answer
  int64_t refresh_steps = 4;          // mix: steps between corpus refreshes
  int64_t teacher_steps = 4;          // rounds: ped_teacher GRPO steps per round
  double teacher_learning_rate = 0.0; // rounds: the ped_teacher's; 0 = train.learning_rate

  bool operator==(const ped_config&) const = default;
};

// ---- the whole file ----------------------------------------------------------------------------

struct config {
  role_config tutor = default_tutor();
  role_config student = default_student();
  role_config judge = default_judge();
  classroom_config classroom;
  reward_config reward;
  train_config train;
  data_config data;
  eval_config eval;
  sft_config sft;
  cluster_config cluster;
  logging_config logging;
  checkpoint_config checkpoint;
  inspect_config inspect;
  ped_config ped;

  bool operator==(const config&) const = default;

  // The reference's models (classroom.md §5.1); AWQ/FP8 variants are replaced by the plain ones.
  static role_config default_tutor() {
    role_config r;
    r.model = "weights/Qwen2.5-7B-Instruct";
    // The reference samples with top_k=50 but trains on the full softmax (classroom.md §10.13);
    // sampling the full softmax keeps behaviour and learner log-probs consistent.
    r.sampling.top_k = 0;
    return r;
  }
  static role_config default_student() {
    role_config r;
    r.model = "weights/Llama-3.1-8B-Instruct";
    return r;
  }
  static role_config default_judge() {
    role_config r;
    r.model = "weights/Qwen2.5-14B-Instruct";
    return r;
  }
};

} // namespace pedagogy::config
