// Range and cross-field rules of the config: each failure names the key, the value and a fix.
#include "config/config.hpp"
#include "config/fields.hpp"
#include "runtime/errors.hpp"
#include "runtime/logging.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <numeric>
#include <set>

namespace pedagogy::config {

namespace {

class rules {
public:
  explicit rules(std::string_view source) : source_(source) {}

  void require(bool ok, const std::string& problem, const std::string& hint) const {
    if (!ok)
      throw input_error(source_, problem, hint);
  }

  void at_least(int64_t value, int64_t minimum, const std::string& key,
                const std::string& meaning = {}) const {
    require(value >= minimum, fmt::format("{} = {} must be at least {}", key, value, minimum),
            meaning.empty() ? fmt::format("set {} to {} or more", key, minimum) : meaning);
  }

  void non_negative(double value, const std::string& key) const {
    require(value >= 0.0, fmt::format("{} = {} must not be negative", key, value),
            fmt::format("{} is a magnitude; 0 turns it off", key));
  }

  void port(int64_t value, const std::string& key) const {
    require(value >= 0 && value <= 65535, fmt::format("{} = {} is not a TCP port", key, value),
            "use 1..65535, or 0 for any free port");
  }

  template <class T>
  void unique(const std::vector<T>& values, const std::string& key) const {
    std::set<T> seen;
    for (const auto& v : values)
      require(seen.insert(v).second, fmt::format("{} lists {} twice", key, fmt::format("'{}'", v)),
              "remove the duplicate");
  }

  // Names become file names under prompt_templates/, so keep them plain.
  void file_stem(const std::string& name, const std::string& key) const {
    bool plain = !name.empty() && name.find_first_not_of(
                                    "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == std::string::npos;
    require(plain, fmt::format("{} has the entry '{}', which is not a plain name", key, name),
            "use letters, digits, '_' and '-'; it names a template file");
  }

  const std::string& source() const {
    return source_;
  }

private:
  std::string source_;
};

// Every float key must be a finite number (TOML also allows inf and nan).
struct finite_floats {
  const rules& r;
  std::string prefix;

  void field(std::string_view name, double& value) const {
    const std::string key = prefix + std::string(name);
    r.require(std::isfinite(value), fmt::format("{} = {} is not a finite number", key, value),
              "use an ordinary number");
  }
  template <class T>
  void field(std::string_view, T&) const {}
  template <class S>
  void table(std::string_view name, S& sub) const {
    finite_floats inner{r, prefix + std::string(name) + "."};
    describe(inner, sub);
  }
};

bool valid_device(const std::string& device) {
  if (device == "auto" || device == "cpu" || device == "cuda")
    return true;
  if (device.rfind("cuda:", 0) != 0 || device.size() == 5)
    return false;
  return device.find_first_not_of("0123456789", 5) == std::string::npos;
}

void check_role(const rules& r, const role_config& role, const std::string& name) {
  const std::string p = name + ".";
  r.require(!role.model.empty() || role.backend == backend_kind::rule,
            fmt::format("{}model is empty", p), "point it at a Hugging Face model directory");
  r.require(role.backend != backend_kind::rule || name == "judge",
            fmt::format("{}backend = \"rule\" is only available for the judge", p),
            "use \"engine\" or \"openai\"");
  if (role.backend == backend_kind::openai) {
    const auto& url = role.openai.base_url;
    r.require(!url.empty(), fmt::format("{}backend = \"openai\" needs {}openai.base_url", p, p),
              "e.g. base_url = \"http://127.0.0.1:8000/v1\" for a local vLLM server");
    r.require(url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0,
              fmt::format("{}openai.base_url = \"{}\" is not an http(s) URL", p, url),
              "write it as http://HOST:PORT/v1");
  }
  if (!role.init.empty()) {
    const auto colon = role.init.find(':');
    const std::string family = role.init.substr(0, colon);
    r.require(colon != std::string::npos && colon + 1 < role.init.size() &&
                (family == "qwen2" || family == "qwen3" || family == "llama"),
              fmt::format("{}init = \"{}\" is not <family>:<preset>", p, role.init),
              "e.g. \"qwen2:tiny\"; families qwen2, qwen3, llama; presets tiny, base, small");
    r.require(role.backend == backend_kind::engine,
              fmt::format("{}init needs backend = \"engine\"", p),
              "remove init, or let our engine serve the model");
  }
  r.require(valid_device(role.device),
            fmt::format("{}device = \"{}\" is not a device", p, role.device),
            "use \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"");
  r.at_least(role.max_context, 1, p + "max_context");
  r.at_least(role.max_batch_sequences, 1, p + "max_batch_sequences");
  r.at_least(role.kv_cache_tokens, 0, p + "kv_cache_tokens",
             "0 holds max_batch_sequences x max_context");
  r.at_least(role.replicas, 1, p + "replicas");
  for (auto rank : role.ranks)
    r.at_least(rank, 0, p + "ranks[]", "ranks are numbered from 0");
  r.unique(role.ranks, p + "ranks");
  r.non_negative(role.sampling.temperature, p + "sampling.temperature");
  r.at_least(role.sampling.top_k, 0, p + "sampling.top_k", "0 turns top-k off");
  r.require(role.sampling.top_p > 0.0 && role.sampling.top_p <= 1.0,
            fmt::format("{}sampling.top_p = {} must be in (0, 1]", p, role.sampling.top_p),
            "1 turns nucleus sampling off");
  r.at_least(role.openai.max_concurrency, 1, p + "openai.max_concurrency");
  r.require(role.openai.timeout_s > 0.0,
            fmt::format("{}openai.timeout_s = {} must be positive", p, role.openai.timeout_s),
            "give seconds, e.g. 120");
  r.at_least(role.openai.max_retries, 0, p + "openai.max_retries", "0 means no retry");
}

void check_classroom(const rules& r, const classroom_config& c) {
  r.at_least(c.max_dialogs_in_flight, 0, "classroom.max_dialogs_in_flight");
  r.at_least(c.max_tutor_turns, 1, "classroom.max_tutor_turns");
  r.at_least(c.max_tokens_in_conversation, 1, "classroom.max_tokens_in_conversation");
  r.at_least(c.max_tokens_per_turn, 1, "classroom.max_tokens_per_turn");
  r.at_least(c.max_tokens_per_student_attempt, 1, "classroom.max_tokens_per_student_attempt");
  r.at_least(c.max_tokens_per_judge_attempt, 1, "classroom.max_tokens_per_judge_attempt");
  r.require(c.max_tokens_per_turn <= c.max_tokens_in_conversation,
            fmt::format("classroom.max_tokens_per_turn = {} exceeds classroom."
                        "max_tokens_in_conversation = {}",
                        c.max_tokens_per_turn, c.max_tokens_in_conversation),
            "one turn cannot be longer than the whole dialog budget");
  r.at_least(c.number_student_attempts, 1, "classroom.number_student_attempts",
             "the reward needs at least one solution after the dialog");
  r.at_least(c.number_judge_attempts, 0, "classroom.number_judge_attempts", "0 turns judging off");
  r.at_least(c.judge_parse_rounds, 1, "classroom.judge_parse_rounds");
  r.require(
    c.number_judge_attempts == 0 || !c.judge_rules.empty(),
    fmt::format("classroom.number_judge_attempts = {} but classroom.judge_rules is empty",
                c.number_judge_attempts),
    "list the rules to judge, or set classroom.number_judge_attempts = 0 to turn judging off");
  for (const auto& rule : c.judge_rules)
    r.file_stem(rule, "classroom.judge_rules");
  r.unique(c.judge_rules, "classroom.judge_rules");
  r.require(!c.personas.empty(), "classroom.personas is empty",
            "list at least one persona, e.g. [\"simple_student\"]");
  for (const auto& persona : c.personas)
    r.file_stem(persona, "classroom.personas");
  r.unique(c.personas, "classroom.personas");
  r.require(!c.student_names.empty(), "classroom.student_names is empty",
            "list at least one name; [\"\"] keeps every student unnamed");
  r.non_negative(c.rejection_penalty, "classroom.rejection_penalty");
  r.require(!c.templates_dir.empty(), "classroom.templates_dir is empty",
            "the default is \"prompt_templates\"");
}

void check_train(const rules& r, const train_config& t, const cluster_config& cluster) {
  r.at_least(t.problems_per_step, 1, "train.problems_per_step");
  r.at_least(t.samples_per_problem, 2, "train.samples_per_problem",
             "GRPO compares samples within a group: with one sample every advantage is 0");
  r.at_least(t.micro_batch_size, 1, "train.micro_batch_size");
  const int64_t batch = t.problems_per_step * t.samples_per_problem;
  const int64_t learners = std::max<int64_t>(1, static_cast<int64_t>(cluster.learner_ranks.size()));
  const int64_t share = t.micro_batch_size * learners;
  if (batch % share != 0) {
    std::vector<int64_t> fitting;
    for (int64_t m = 1; m <= batch / learners && fitting.size() < 8; ++m)
      if (batch % (m * learners) == 0)
        fitting.push_back(m);
    r.require(false,
              fmt::format("the batch of train.problems_per_step x train.samples_per_problem = {} x "
                          "{} = {} sequences does not split into micro-batches of "
                          "train.micro_batch_size = {} on {} learner(s)",
                          t.problems_per_step, t.samples_per_problem, batch, t.micro_batch_size,
                          learners),
              fmt::format("use a train.micro_batch_size that divides {}: {}", batch / learners,
                          fmt::join(fitting, ", ")));
  }
  r.at_least(t.mu, 1, "train.mu");
  r.require(t.learning_rate > 0.0,
            fmt::format("train.learning_rate = {} must be positive", t.learning_rate),
            "the reference uses 5e-7");
  r.at_least(t.warmup_steps, 0, "train.warmup_steps", "0 means no warmup");
  r.non_negative(t.weight_decay, "train.weight_decay");
  for (auto [value, key] :
       {std::pair{t.adam_beta1, "train.adam_beta1"}, std::pair{t.adam_beta2, "train.adam_beta2"}})
    r.require(value >= 0.0 && value < 1.0, fmt::format("{} = {} must be in [0, 1)", key, value),
              "the usual values are 0.9 and 0.999");
  r.require(t.adam_eps > 0.0, fmt::format("train.adam_eps = {} must be positive", t.adam_eps),
            "the usual value is 1e-8");
  r.non_negative(t.max_grad_norm, "train.max_grad_norm");
  r.non_negative(t.beta, "train.beta");
  r.require(t.epsilon > 0.0 && t.epsilon < 1.0,
            fmt::format("train.epsilon = {} must be in (0, 1)", t.epsilon),
            "the reference clips at 0.2");
  r.require(
    t.epsilon_high == 0.0 || t.epsilon_high >= t.epsilon,
    fmt::format("train.epsilon_high = {} is below train.epsilon = {}", t.epsilon_high, t.epsilon),
    "the upper clip range is at least the lower one (DAPO's clip-higher); 0 = same as epsilon");
  r.require(t.std_eps > 0.0, fmt::format("train.std_eps = {} must be positive", t.std_eps),
            "it keeps groups with equal rewards from dividing by zero; the reference uses 1e-4");
  r.at_least(t.epochs, 1, "train.epochs");
  r.at_least(t.max_steps, 0, "train.max_steps", "0 runs until the epochs are done");
  r.require(t.max_staleness == 0 || t.max_staleness == 1,
            fmt::format("train.max_staleness = {} is not supported", t.max_staleness),
            "use 0 (on-policy) or 1 (rollouts overlap learning)");
}

void check_process(const rules& r, const config& c) {
  r.require(!c.data.problem_field.empty() && !c.data.answer_field.empty(),
            "data.problem_field and data.answer_field must name JSON fields",
            "the defaults are \"problem\" and \"answer\"");
  r.at_least(c.data.max_problems, 0, "data.max_problems", "0 uses every problem");
  r.at_least(c.eval.max_problems, 0, "eval.max_problems", "0 evaluates every problem");
  r.at_least(c.eval.samples_per_problem, 1, "eval.samples_per_problem");

  const auto& k = c.cluster;
  for (auto rank : k.learner_ranks)
    r.at_least(rank, 0, "cluster.learner_ranks[]", "ranks are numbered from 0");
  r.unique(k.learner_ranks, "cluster.learner_ranks");
  r.port(k.port, "cluster.port");
  r.at_least(k.scheduler_threads, 0, "cluster.scheduler_threads", "0 uses one thread per core");
  r.at_least(k.torch_threads, 0, "cluster.torch_threads", "0 uses one thread per core");
  r.at_least(k.weight_bucket_mb, 1, "cluster.weight_bucket_mb");
  r.non_negative(k.collective_timeout_s, "cluster.collective_timeout_s");

  log::validate_levels(c.logging.level, fmt::format("{}: logging.level", r.source()));
  r.require(!c.logging.run_dir.empty(), "logging.run_dir is empty",
            "name a folder for dialogs, metrics and logs, e.g. \"runs/tiny\"");
  r.at_least(c.logging.print_every_steps, 0, "logging.print_every_steps", "0 prints no progress");
  r.at_least(c.checkpoint.every_steps, 0, "checkpoint.every_steps", "0 saves only at the end");
  r.at_least(c.checkpoint.keep_last, 0, "checkpoint.keep_last", "0 keeps every checkpoint");
  r.port(c.inspect.port, "inspect.port");
  r.at_least(c.inspect.heartbeat_ms, 1, "inspect.heartbeat_ms");
}

} // namespace

void validate(const config& cfg, std::string_view source) {
  rules r{source};
  config copy = cfg; // the visitors take mutable references
  finite_floats floats{r, ""};
  describe(floats, copy);
  check_role(r, cfg.tutor, "tutor");
  check_role(r, cfg.student, "student");
  check_role(r, cfg.judge, "judge");
  check_classroom(r, cfg.classroom);
  if (cfg.judge.backend == backend_kind::rule)
    for (const auto& rule : cfg.classroom.judge_rules)
      r.require(rule == "does_not_leak_answer",
                fmt::format("judge.backend = \"rule\" cannot judge rule '{}'", rule),
                "only \"does_not_leak_answer\" has a rule; use a model judge (backend \"engine\" "
                "or \"openai\") for other rules");
  for (auto [value, key] :
       {std::pair{cfg.reward.end_marker_bonus, "reward.end_marker_bonus"},
        std::pair{cfg.reward.length_penalty, "reward.length_penalty"},
        std::pair{cfg.reward.thinking_unbalanced_penalty, "reward.thinking_unbalanced_penalty"},
        std::pair{cfg.reward.thinking_bonus, "reward.thinking_bonus"}})
    r.non_negative(value, key);
  check_train(r, cfg.train, cfg.cluster);
  check_process(r, cfg);
}

} // namespace pedagogy::config
