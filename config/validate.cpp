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
#include <type_traits>
#include <utility>
#include <vector>

namespace pedagogy::config {

namespace {

class rules {
public:
  explicit rules(std::string_view source) : source_(source) {}

  void require(bool ok, const std::string& problem, const std::string& hint) const {
    if (!ok)
      throw input_error(source_, problem, hint);
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

// What fields.hpp says of each key: numbers lie in their range (TOML also allows inf and nan,
// which no range holds). Loading checks ranges already; this catches configs built in code.
struct knob_rules {
  const rules& r;
  std::string prefix;

  template <class T>
  void field(std::string_view name, T& value, const knob& k) const {
    check_range(r.source(), prefix + std::string(name), value, k);
  }
  template <class S>
  void table(std::string_view name, S& sub) const {
    knob_rules inner{r, prefix + std::string(name) + "."};
    describe(inner, sub);
  }
};

// The keys whose feature is not built, each with its value as text, in schema order; a config
// and the defaults give lists of the same keys, which must then be equal.
struct unbuilt_values {
  std::string prefix;
  std::vector<std::pair<std::string, std::string>>* out;

  template <class T>
  void field(std::string_view name, T& value, const knob& k) const {
    if (k.built)
      return;
    if constexpr (config_enum<T>)
      out->emplace_back(prefix + std::string(name), std::string(to_string(value)));
    else
      out->emplace_back(prefix + std::string(name), fmt::format("{}", value));
  }
  template <class S>
  void table(std::string_view name, S& sub) const {
    unbuilt_values inner{prefix + std::string(name) + ".", out};
    describe(inner, sub);
  }
};

void check_unbuilt(const rules& r, const config& cfg) {
  std::vector<std::pair<std::string, std::string>> values, defaults;
  config copy = cfg, default_config; // the visitors take mutable references
  unbuilt_values of_config{"", &values}, of_defaults{"", &defaults};
  describe(of_config, copy);
  describe(of_defaults, default_config);
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i] != defaults[i])
      refuse_unbuilt(r.source(), values[i].first);
}

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
  const int64_t kv = role.kv_budget();
  r.require(
    kv >= role.kv_block_tokens,
    fmt::format("{}kv_cache_tokens = {} does not hold one KV block of {}kv_block_tokens = {}", p,
                kv, p, role.kv_block_tokens),
    "raise kv_cache_tokens (0 = max_batch_sequences x max_context) or lower kv_block_tokens");
  r.unique(role.ranks, p + "ranks");
}

void check_classroom(const rules& r, const classroom_config& c) {
  r.require(c.max_tokens_per_turn <= c.max_tokens_in_conversation,
            fmt::format("classroom.max_tokens_per_turn = {} exceeds classroom."
                        "max_tokens_in_conversation = {}",
                        c.max_tokens_per_turn, c.max_tokens_in_conversation),
            "one turn cannot be longer than the whole dialog budget");
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
  r.require(!c.templates_dir.empty(), "classroom.templates_dir is empty",
            "the default is \"prompt_templates\"");
}

void check_train(const rules& r, const train_config& t, const cluster_config& cluster) {
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
  r.require(
    t.epsilon_high == 0.0 || t.epsilon_high >= t.epsilon,
    fmt::format("train.epsilon_high = {} is below train.epsilon = {}", t.epsilon_high, t.epsilon),
    "the upper clip range is at least the lower one (DAPO's clip-higher); 0 = same as epsilon");
}

void check_ped(const rules& r, const config& c) {
  const auto& p = c.ped;
  r.require(p.policy == ped_policy::tutor || c.reward.check != answer_check::none,
            "ped.policy = \"solver\" with reward.check = \"none\" has no reward",
            "the solver is rewarded by the answer check: use \"math\" or \"exact\"");
  if (p.mode == ped_mode::off)
    return;
  r.require(c.train.max_staleness == 0,
            fmt::format("ped.mode = \"{}\" needs train.max_staleness = 0", to_string(p.mode)),
            "the ped_teacher's phases sit between a step's rollout and its update; one-step "
            "off-policy rollouts are not combined with them");
  r.require((p.mode != ped_mode::rescue && p.mode != ped_mode::mix) || p.alpha > 0,
            fmt::format("ped.mode = \"{}\" with ped.alpha = 0 imitates nothing", to_string(p.mode)),
            "give the imitation loss a weight, e.g. 0.5, or use ped.mode = \"off\"");
}

void check_process(const rules& r, const config& c) {
  r.require(!c.data.problem_field.empty() && !c.data.answer_field.empty(),
            "data.problem_field and data.answer_field must name JSON fields",
            "the defaults are \"problem\" and \"answer\"");
  r.unique(c.cluster.learner_ranks, "cluster.learner_ranks");

  const auto& i = c.inspect;
  r.require(i.unresponsive_s * 1000 >= static_cast<double>(i.heartbeat_ms),
            fmt::format("inspect.unresponsive_s = {} must be at least one heartbeat ({} ms)",
                        i.unresponsive_s, i.heartbeat_ms),
            "a few heartbeats, e.g. 10 with heartbeat_ms = 1000");
  r.require(i.linger_s == -1 || i.linger_s >= 0,
            fmt::format("inspect.linger_s = {} must be -1 or in [0, 604800]", i.linger_s),
            "seconds to keep serving after the run ends; -1 = until Ctrl-C, 0 = not at all");

  const auto& s = c.sft;
  r.require(!s.messages_field.empty(), "sft.messages_field is empty",
            "name the JSON field holding each example's messages, e.g. \"messages\"");

  log::validate_levels(c.logging.level, fmt::format("{}: logging.level", r.source()));
  r.require(!c.logging.run_dir.empty(), "logging.run_dir is empty",
            "name a folder for dialogs, metrics and logs, e.g. \"runs/tiny\"");
}

} // namespace

void check_range(const std::string& where, const std::string& key, int64_t value, const knob& k) {
  if (value >= k.min && value <= k.max)
    return;
  const std::string problem = value < k.min
                                ? fmt::format("{} = {} is below the minimum {}", key, value, k.min)
                                : fmt::format("{} = {} is above the maximum {}", key, value, k.max);
  std::string hint = fmt::format("use {}..{}", k.min, k.max);
  if (!k.hint.empty())
    hint += fmt::format("; {}", k.hint);
  throw input_error(where, problem, hint);
}

void check_range(const std::string& where, const std::string& key,
                 const std::vector<int64_t>& values, const knob& k) {
  for (size_t i = 0; i < values.size(); ++i)
    check_range(where, fmt::format("{}[{}]", key, i), values[i], k);
}

void check_range(const std::string& where, const std::string& key, double value, const knob& k) {
  const bool low_open = k.real_ends == ends::open_low || k.real_ends == ends::open;
  const bool high_open = k.real_ends == ends::open_high || k.real_ends == ends::open;
  // Written so that not a number fails both comparisons.
  const bool above_low = low_open ? value > k.low : value >= k.low;
  const bool below_high = high_open ? value < k.high : value <= k.high;
  if (above_low && below_high)
    return;
  const std::string range =
    fmt::format("{}{}, {}{}", low_open ? '(' : '[', k.low, k.high, high_open ? ')' : ']');
  const std::string problem = std::isfinite(value)
                                ? fmt::format("{} = {} must be in {}", key, value, range)
                                : fmt::format("{} = {} is not a finite number", key, value);
  std::string hint = fmt::format("use a number in {}", range);
  if (!k.hint.empty())
    hint += fmt::format("; {}", k.hint);
  throw input_error(where, problem, hint);
}

void refuse_unbuilt(const std::string& where, const std::string& key) {
  throw input_error(where, fmt::format("{} is not built yet", key),
                    "remove the key: only its default is accepted until the feature that reads "
                    "it is built (`pedagogy config show` prints the defaults)");
}

void validate(const config& cfg, std::string_view source) {
  rules r{source};
  config copy = cfg; // the visitors take mutable references
  knob_rules knobs{r, ""};
  describe(knobs, copy);
  check_unbuilt(r, cfg);
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
  check_train(r, cfg.train, cfg.cluster);
  check_ped(r, cfg);
  check_process(r, cfg);
}

} // namespace pedagogy::config
