// Pedagogical RL's dual rendering, on real tokens: a ped_teacher dialog's ped_learner view is the
// deployment rendering followed by the exact ids the ped_teacher sampled; with an empty privileged
// block both views equal the normal rollout's tokens; the privileged block reaches the ped_teacher
// alone (never the student's, the judges' or the ped_learner's view), for a tutor (setting A)
// and for a solver (setting B). The splice itself and the answer marks are tested on their own.
#include "actors/rollout.hpp"
#include "jobs/setup.hpp"
#include "models/tensor/init_model.hpp"
#include "models/text/tokenizer.hpp"
#include "rl/ped_views.hpp"
#include "runtime/files.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <filesystem>
#include <mutex>

using namespace pedagogy;
using namespace pedagogy::actors;
namespace fs = std::filesystem;

namespace {

models::session_history history(std::vector<int32_t> tokens, std::vector<uint8_t> sampled) {
  models::session_history h;
  h.tokens = std::move(tokens);
  h.sampled = std::move(sampled);
  for (auto s : h.sampled) {
    h.logprobs.push_back(s != 0 ? -0.5f : 0.0f);
    h.versions.push_back(s != 0 ? 3 : -1);
  }
  return h;
}

} // namespace

TEST_CASE("the ped_learner's view: the learner's prompt, then every later id as it was") {
  const auto teacher = history({1, 2, 3, 9, 9, 4, 5}, {0, 0, 0, 1, 1, 0, 1});
  const auto view = learner_view(teacher, {1, 2, 3}, {7, 8});
  REQUIRE(view.has_value());
  CHECK(view->tokens == std::vector<int32_t>{7, 8, 9, 9, 4, 5});
  CHECK(view->sampled == std::vector<uint8_t>{0, 0, 1, 1, 0, 1});
  CHECK(view->logprobs == std::vector<float>{0, 0, -0.5f, -0.5f, 0, -0.5f});
  CHECK(view->versions == std::vector<int64_t>{-1, -1, 3, 3, -1, 3});
  // A session that does not start with the ped_teacher's prompt cannot be spliced.
  CHECK_FALSE(learner_view(teacher, {1, 2, 4}, {7, 8}).has_value());
  CHECK_FALSE(learner_view(teacher, {1, 2, 3, 9, 9, 4, 5, 6}, {7}).has_value());
}

TEST_CASE("answer marks: the sampled tokens that spell the answer, within one sampled run") {
  // Tokens spell "x=", "4", "2", " ok" (sampled), then "42" as context, then "4","2" sampled.
  const std::vector<std::string> text = {"x=", "4", "2", " ok", "42", "4", "2"};
  const auto h = history({0, 1, 2, 3, 4, 5, 6}, {1, 1, 1, 1, 0, 1, 1});
  const auto of = [&](int32_t id) {
    return text[static_cast<size_t>(id)];
  };
  CHECK(answer_marks(h, of, " 42 ") == std::vector<uint8_t>{0, 1, 1, 0, 0, 1, 1});
  CHECK(answer_marks(h, of, "7") == std::vector<uint8_t>(7, 0));
  CHECK(answer_marks(h, of, "  ") == std::vector<uint8_t>(7, 0));
  // An answer split across a context token is not one the policy spelled.
  CHECK(answer_marks(h, of, "ok42") == std::vector<uint8_t>(7, 0));
}

namespace {

// A student or judge that records every message it is sent and answers with fixed texts.
struct recorder {
  std::mutex mutex;
  std::vector<std::string> seen; // every message's content
};

generator_actor::behavior_type recording(generator_actor::pointer, std::shared_ptr<recorder> log,
                                         std::string text) {
  return {
    [=](generate_atom, const generate_request& r) {
      {
        std::lock_guard guard{log->mutex};
        for (const auto& m : r.messages)
          log->seen.push_back(m.content);
      }
      generate_reply reply;
      for (int64_t i = 0; i < r.n; ++i) {
        generated_text c;
        c.text = text;
        c.tokens = {1, 2};
        c.logprobs = {0, 0};
        c.sampled = {1, 1};
        c.finish_reason = "stop";
        reply.completions.push_back(c);
      }
      return reply;
    },
    [](close_atom, const std::string&) { return token_history{}; },
    [](status_atom) { return generator_status{}; },
    [](weights_atom, int64_t v) { return v; },
    [](cancel_atom, const std::string&) {},
  };
}

constexpr const char* secret = "PRIVILEGED-BLOCK-4242";

struct dual_fixture {
  fs::path dir = fs::temp_directory_path() / "pedagogy_ped_views";
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  std::shared_ptr<recorder> student_log = std::make_shared<recorder>();
  std::shared_ptr<recorder> judge_log = std::make_shared<recorder>();
  std::unique_ptr<models::tokenizer> tokenizer;

  dual_fixture() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    models::init_options init;
    init.family = models::model_family::qwen2;
    init.seed = 5;
    init.out = dir / "model";
    models::init_model(init);
    tokenizer = std::make_unique<models::tokenizer>(
      models::tokenizer::from_file(dir / "model" / "tokenizer.json"));
    fs::copy(fs::path(PEDAGOGY_SOURCE_DIR) / "prompt_templates", dir / "templates",
             fs::copy_options::recursive);
    add_message_types(config);
    config.set("scheduler.max-threads", 2);
    system = std::make_unique<caf::actor_system>(config);
  }

  ~dual_fixture() {
    system.reset();
    fs::remove_all(dir);
  }

  // The privileged block's template for `policy` ("" = an empty block).
  void block(const std::string& policy, const std::string& text) {
    files::write_atomically(dir / "templates" / ("ped_teacher_" + policy + ".txt"), text);
  }

  std::shared_ptr<classroom_setup> setup(bool solver) {
    auto s = std::make_shared<classroom_setup>();
    s->prompts =
      classroom::prompt_set::load(dir / "templates", {"simple_student"}, {"does_not_leak_answer"});
    s->ped = classroom::ped_prompts::load(dir / "templates", solver ? "solver" : "tutor");
    s->solver = solver;
    s->limits.max_tutor_turns = 2;
    s->limits.max_tokens_in_conversation = 100000;
    s->limits.judge_rules = {"does_not_leak_answer"};
    s->limits.judge_attempts = 1;
    s->limits.judge_parse_rounds = 1;
    s->check = classroom::answer_mode::math;
    s->personas = {"simple_student"};
    s->student_names = {"Alex"};
    s->forced_type = classroom::dialog_type::guided;
    s->number_student_attempts = 2;
    s->max_tokens_per_turn = 6;
    s->max_tokens_per_student_attempt = 6;
    s->tutor.temperature = 0; // greedy: the same prompt gives the same ids
    attach_prompt_renderer(*s, dir / "model");
    return s;
  }

  std::vector<dialog_result> run(const std::shared_ptr<classroom_setup>& s, bool privileged) {
    generator_setup g;
    g.role = "tutor";
    g.model = dir / "model";
    role_generators generators{
      spawn_generator(*system, g), system->spawn(recording, student_log, "I think it is 3."),
      system->spawn(recording, judge_log, R"({"reasoning": "fine", "decision": "OK"})")};
    const std::vector<classroom::problem> problems = {{"What is 6 times 7?", "42", 1},
                                                      {"What is 5 plus 4?", "9", 2}};
    auto jobs = make_jobs(0, problems, {0, 1}, 2, 9);
    for (auto& job : jobs)
      job.privileged = privileged;
    auto out = run_rollout(*system, s, generators, std::move(jobs));
    for (auto* a : {&generators.tutor, &generators.student, &generators.judge})
      caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
    system->await_all_actors_done();
    return out;
  }

  std::string text(const std::vector<int32_t>& ids) const {
    return tokenizer->decode(ids);
  }
};

void check_dual_views(bool solver) {
  dual_fixture f;
  const std::string policy = solver ? "solver" : "tutor";
  f.block(policy, std::string(secret) + ": the answer is {{ answer }}.");
  const auto results = f.run(f.setup(solver), true);
  REQUIRE(results.size() == 4);
  for (const auto& r : results) {
    CAPTURE(r.record.id);
    REQUIRE(r.record.status == "ok");
    CHECK(r.record.ped_teacher);
    CHECK(r.record.id.find("/ped_teacher") != std::string::npos);
    // The ped_teacher saw the block; the ped_learner's view never has it, and it is the
    // deployment rendering of the same messages followed by the very ids the teacher sampled.
    CHECK(f.text(r.tutor.tokens).find(secret) != std::string::npos);
    REQUIRE_FALSE(r.learner_view.tokens.empty());
    CHECK(f.text(r.learner_view.tokens).find(secret) == std::string::npos);
    CHECK(f.text(r.learner_view.tokens).find(r.record.problem) != std::string::npos);
    std::vector<int32_t> teacher_sampled, learner_sampled;
    for (size_t i = 0; i < r.tutor.tokens.size(); ++i)
      if (r.tutor.sampled[i] != 0)
        teacher_sampled.push_back(r.tutor.tokens[i]);
    for (size_t i = 0; i < r.learner_view.tokens.size(); ++i)
      if (r.learner_view.sampled[i] != 0)
        learner_sampled.push_back(r.learner_view.tokens[i]);
    CHECK_FALSE(teacher_sampled.empty());
    CHECK(learner_sampled == teacher_sampled);
    CHECK(r.answer_tokens.size() == r.learner_view.tokens.size());
  }
  // Nothing the student or the judges were sent carries the block.
  for (const auto* log : {f.student_log.get(), f.judge_log.get()})
    for (const auto& m : log->seen)
      CHECK(m.find(secret) == std::string::npos);
  if (!solver) {
    CHECK_FALSE(f.student_log->seen.empty());
    CHECK_FALSE(f.judge_log->seen.empty());
  }
}

void check_empty_block(bool solver) {
  dual_fixture f;
  f.block(solver ? "solver" : "tutor", "{# nothing privileged #}");
  const auto plain = f.run(f.setup(solver), false);
  const auto dual = f.run(f.setup(solver), true);
  REQUIRE(plain.size() == dual.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    CAPTURE(i);
    REQUIRE(plain[i].record.status == "ok");
    REQUIRE(dual[i].record.status == "ok");
    CHECK_FALSE(plain[i].tutor.tokens.empty());
    CHECK(dual[i].tutor.tokens == plain[i].tutor.tokens);
    CHECK(dual[i].learner_view.tokens == plain[i].tutor.tokens);
    CHECK(dual[i].learner_view.sampled == plain[i].tutor.sampled);
  }
}

} // namespace

TEST_CASE("tutor dialogs: the block reaches the ped_teacher alone, the learner view is exact") {
  check_dual_views(false);
}

TEST_CASE("solver dialogs: the block reaches the ped_teacher alone, the learner view is exact") {
  check_dual_views(true);
}

TEST_CASE("tutor dialogs: with an empty block both views equal the normal rollout's tokens") {
  check_empty_block(false);
}

TEST_CASE("solver dialogs: with an empty block both views equal the normal rollout's tokens") {
  check_empty_block(true);
}
