// The recall task (see ped_task.hpp).
#include "bench/ped_task.hpp"

#include "models/learner/learner.hpp"
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"
#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/seeds.hpp"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <numeric>

namespace pedagogy::bench {

namespace {

namespace fs = std::filesystem;

// Items of three letters and codes of three digits, from a splitmix64 stream.
struct item {
  std::string name, code;
};

std::string letters(uint64_t& state) {
  std::string out;
  for (int i = 0; i < 3; ++i)
    out += static_cast<char>('a' + splitmix64(state) % 26);
  return out;
}

item draw(uint64_t& state) {
  item out;
  out.name = letters(state);
  out.code = std::to_string(100 + splitmix64(state) % 900);
  return out;
}

std::string question(const item& it) {
  return fmt::format("Code of {}?", it.name);
}

// One example: the problem (in the ped_teacher's view, the answer in the system prompt), then the
// solver's reply "\boxed{code}" and its end-of-turn token, trained on the reply alone.
models::training_sequence example(const item& it, bool answer_in_view, const models::tokenizer& tok,
                                  const models::chat_format& format) {
  std::vector<models::chat_message> messages{{"user", question(it)}};
  if (answer_in_view)
    messages.insert(messages.begin(), {"system", it.code});
  const auto prompt = tok.encode(format.render(messages, true));
  const auto reply = tok.encode(fmt::format("\\boxed{{{}}}{}", it.code, format.end_of_turn()));
  models::training_sequence s;
  s.tokens = prompt;
  s.tokens.insert(s.tokens.end(), reply.begin(), reply.end());
  s.trained.assign(prompt.size(), 0);
  s.trained.resize(s.tokens.size(), 1);
  s.behaviour_logprobs.assign(s.tokens.size(), 0.0f);
  s.imitation = 1.0;
  return s;
}

} // namespace

recall_task make_recall_task(const fs::path& dir, const recall_options& options) {
  PEDAGOGY_CHECK(options.problems >= 1 && options.warmup_steps >= 0, "bad recall options");
  fs::remove_all(dir);
  fs::create_directories(dir);
  recall_task task{dir / "problems.jsonl", dir / "templates", dir / "model"};

  // The problems: items the warm-up never shows (their stream is drawn apart).
  uint64_t problem_state = derive_seed(options.seed, 1);
  std::string rows;
  for (int64_t i = 0; i < options.problems; ++i) {
    const auto it = draw(problem_state);
    rows += nlohmann::json{{"problem", question(it)}, {"answer", it.code}}.dump() + "\n";
  }
  files::write_atomically(task.problems, rows);

  // The classroom's templates, with the solver prompt and the privileged block reduced to the
  // problem and the answer.
  fs::copy(options.source_templates, task.templates, fs::copy_options::recursive);
  files::write_atomically(task.templates / "solver.txt", "{{ problem }}\n");
  files::write_atomically(task.templates / "ped_teacher_solver.txt", "{{ answer }}\n");

  // The copy skill: SFT (imitation without a gate) on fresh items with their code in view, until
  // it is learned (a mean loss per token below 0.1 over 10 steps) or for `warmup_steps`. It
  // emerges after a plateau whose length depends on the initialisation and on the build's float
  // arithmetic, so a fresh initialisation is tried when it did not (4 tries at most). Then, for a
  // third as many steps, half the items come without their code (every code equally likely: a
  // model that does not know is unsure, so its blind guesses hit one time in 900 and the answer
  // tokens stay learnable rather than confidently wrong).
  models::learner_options lo;
  lo.learning_rate = 1e-2;
  lo.micro_batch_size = 32;
  lo.mu = 1;
  lo.max_grad_norm = 1.0;
  lo.gate.gating = false;
  uint64_t warmup_state = derive_seed(options.seed, 2);
  std::unique_ptr<models::learner> learner;
  for (int attempt = 0;; ++attempt) {
    models::init_options init;
    init.family = models::model_family::qwen2;
    init.preset = options.preset;
    init.seed = derive_seed(options.seed, 10 + static_cast<uint64_t>(attempt));
    init.out = task.model;
    init.force = true;
    models::init_model(init);
    learner = std::make_unique<models::learner>(
      models::transformer::load(task.model, at::kCPU, at::kFloat), std::nullopt, lo);
    const auto tok = models::tokenizer::from_file(task.model / "tokenizer.json");
    const auto format = models::chat_format::from_model_dir(task.model);
    std::vector<double> recent;
    for (int64_t step = 0; step < options.warmup_steps; ++step) {
      std::vector<models::training_sequence> batch;
      for (int i = 0; i < 32; ++i)
        batch.push_back(example(draw(warmup_state), true, tok, format));
      recent.push_back(learner->learn(batch).imitation_loss);
      if (recent.size() > 10)
        recent.erase(recent.begin());
      task.copy_loss = std::accumulate(recent.begin(), recent.end(), 0.0) /
                       static_cast<double>(std::max<size_t>(recent.size(), 1));
      if (recent.size() == 10 && task.copy_loss < 0.1)
        break;
    }
    task.attempts = attempt + 1;
    if (task.copy_loss < 0.1 || attempt == 3)
      break;
  }
  const auto tok = models::tokenizer::from_file(task.model / "tokenizer.json");
  const auto format = models::chat_format::from_model_dir(task.model);
  for (int64_t step = 0; step < std::max<int64_t>(1, options.warmup_steps / 3); ++step) {
    std::vector<models::training_sequence> batch;
    for (int i = 0; i < 32; ++i)
      batch.push_back(example(draw(warmup_state), i % 2 == 0, tok, format));
    task.warmup_loss = learner->learn(batch).imitation_loss;
  }
  learner->policy().save(task.model);
  return task;
}

config::config recall_config(config::config base, const recall_task& task, config::ped_mode mode,
                             int64_t problems_per_step, int64_t samples) {
  auto& cfg = base;
  cfg.tutor.model = task.model.string();
  cfg.tutor.init.clear();
  cfg.tutor.sampling.temperature = 1.0;
  cfg.tutor.sampling.top_k = 0;
  cfg.judge.backend = config::backend_kind::rule;
  cfg.classroom.templates_dir = task.templates.string();
  cfg.classroom.number_judge_attempts = 0;
  cfg.classroom.judge_rules.clear();
  cfg.classroom.max_tokens_per_student_attempt = 12; // "\boxed{123}" and its end token
  cfg.reward.check = config::answer_check::exact;
  cfg.data.train = task.problems.string();
  cfg.data.max_problems = 0;
  cfg.train.problems_per_step = problems_per_step;
  cfg.train.samples_per_problem = samples;
  cfg.train.micro_batch_size = samples;
  cfg.train.mu = 2;
  cfg.train.beta = 0;
  cfg.train.learning_rate = 5e-3;
  cfg.train.seed = 11;
  cfg.cluster.torch_threads = 1;
  cfg.logging.level = "warn";
  cfg.logging.save_dialogs = false;
  cfg.ped.policy = config::ped_policy::solver;
  cfg.ped.mode = mode;
  // The answer here is memorised, not derived: under the blind policy its digits sit near
  // log(1/10), and drift below the spec's gamma = -3.5 as the policy moves. gamma = -8 (a value
  // one re-implementation uses; the spec says to calibrate it from the log-prob histogram) keeps
  // them learnable. Every kept trajectory is imitated at full weight.
  cfg.ped.gamma = -8;
  cfg.ped.alpha = 1;
  cfg.ped.select = config::corpus_select::all;
  cfg.ped.teacher_samples = samples;
  cfg.ped.teacher_steps = 4;
  cfg.ped.teacher_learning_rate = 1e-3; // a GRPO step at 5e-3 wrecks the tiny ped_teacher
  return cfg;
}

actors::generator_actor spawn_idle_student(caf::actor_system& system) {
  using namespace actors;
  return system.spawn([](generator_actor::pointer) -> generator_actor::behavior_type {
    return {
      [](generate_atom, const generate_request&) -> generate_reply { return {}; },
      [](close_atom, const std::string&) { return token_history{}; },
      [](status_atom) { return generator_status{}; },
      [](weights_atom, int64_t v) { return v; },
      [](cancel_atom, const std::string&) {},
    };
  });
}

} // namespace pedagogy::bench
