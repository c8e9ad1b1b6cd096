// Dialogs as actor workflows against scripted fake generators: every transition seen from the
// generators' side (what each role is asked, with which messages and sessions), judging in both
// modes and both verdict policies, K solutions, failures retried or recorded, and the lock-step
// baseline producing the same records as the async schedule.
#include "actors/rollout.hpp"
#include "runtime/errors.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>

using namespace pedagogy;
using namespace pedagogy::actors;
namespace fs = std::filesystem;

namespace {

// What a fake generator was asked, in arrival order.
struct call_log {
  std::mutex mutex;
  std::vector<generate_request> requests;
  std::vector<std::string> closed;
  int64_t open_sessions = 0; // opened by a request and not closed yet
  int64_t most_open_sessions = 0;
  std::vector<generate_request> snapshot() {
    std::lock_guard guard{mutex};
    return requests;
  }
};

// A script answers one request with n texts; "!fail" answers with a runtime error,
// "!refuse" with invalid_argument (as a generator refusing a prompt that does not fit), and
// "!stop-string:TEXT" with TEXT cut by a stop string (no end-of-turn token generated).
using script = std::function<std::vector<std::string>(const generate_request&)>;

generated_text fake_completion(const std::string& text) {
  const std::string cut = "!stop-string:";
  const bool stop_string = text.starts_with(cut);
  generated_text c;
  c.text = stop_string ? text.substr(cut.size()) : text;
  // One token per character and the end-of-turn token, so budgets are easy to reason about.
  for (size_t i = 0; i < c.text.size() + (stop_string ? 0 : 1); ++i) {
    c.tokens.push_back(static_cast<int32_t>(i));
    c.logprobs.push_back(-0.5f);
    c.sampled.push_back(1);
  }
  c.finish_reason = "stop";
  c.stop_token = !stop_string;
  return c;
}

generator_actor::behavior_type fake_generator(generator_actor::pointer, script answer,
                                              std::shared_ptr<call_log> log) {
  return {
    [=](generate_atom, const generate_request& request) -> caf::result<generate_reply> {
      {
        std::lock_guard guard{log->mutex};
        log->requests.push_back(request);
        if (request.open_session)
          log->most_open_sessions = std::max(log->most_open_sessions, ++log->open_sessions);
      }
      generate_reply reply;
      for (const auto& text : answer(request)) {
        if (text == "!fail")
          return caf::make_error(caf::sec::runtime_error, "the engine fell over");
        if (text == "!refuse")
          return caf::make_error(caf::sec::invalid_argument, "prompt does not fit");
        reply.completions.push_back(fake_completion(text));
      }
      return reply;
    },
    [=](close_atom, const std::string& session) -> token_history {
      std::lock_guard guard{log->mutex};
      log->closed.push_back(session);
      --log->open_sessions;
      token_history h;
      h.tokens = {1, 2, 3};
      h.sampled = {0, 1, 1};
      h.logprobs = {0, -0.1f, -0.2f};
      h.versions = {-1, 0, 0};
      return h;
    },
    [=](status_atom) { return generator_status{}; },
    [=](cancel_atom, const std::string&) {},
    [=](weights_atom, int64_t version) { return version; },
  };
}

std::vector<std::string> repeat(const generate_request& r, const std::string& text) {
  return std::vector<std::string>(static_cast<size_t>(r.n), text);
}

struct classroom_fixture {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> system;
  std::shared_ptr<call_log> tutor_log = std::make_shared<call_log>();
  std::shared_ptr<call_log> student_log = std::make_shared<call_log>();
  std::shared_ptr<call_log> judge_log = std::make_shared<call_log>();
  std::shared_ptr<classroom_setup> setup = std::make_shared<classroom_setup>();
  script tutor = [](const generate_request& r) {
    return repeat(r, "What is the first step?");
  };
  script student = [](const generate_request& r) {
    // Final solutions are asked with n > 1 (K); turns with n = 1.
    return repeat(r, r.n > 1 ? "So the answer is \\boxed{42}." : "I would multiply.");
  };
  script judge = [](const generate_request& r) {
    return repeat(r, R"({"reasoning": "fine", "decision": "OK"})");
  };

  classroom_fixture() {
    add_message_types(config);
    config.set("scheduler.max-threads", 2);
    system = std::make_unique<caf::actor_system>(config);
    auto& s = *setup;
    s.prompts = classroom::prompt_set::load(fs::path(PEDAGOGY_SOURCE_DIR) / "prompt_templates",
                                            {"simple_student"}, {"does_not_leak_answer"});
    s.limits.max_tutor_turns = 3;
    s.limits.max_tokens_in_conversation = 100000;
    s.limits.judge_rules = {"does_not_leak_answer"};
    s.limits.judge_attempts = 2;
    s.limits.judge_parse_rounds = 3;
    s.check = classroom::answer_mode::math;
    s.personas = {"simple_student"};
    s.student_names = {"Alex", "Sam", ""};
    s.forced_type = classroom::dialog_type::guided;
    s.number_student_attempts = 4;
    s.max_call_retries = 2;
  }

  role_generators spawn() {
    // Through indirection, so a test may change a script after spawning.
    auto via = [](const script& s) {
      return [&s](const generate_request& r) {
        return s(r);
      };
    };
    return {system->spawn(fake_generator, script(via(tutor)), tutor_log),
            system->spawn(fake_generator, script(via(student)), student_log),
            system->spawn(fake_generator, script(via(judge)), judge_log)};
  }

  std::vector<dialog_result> run(int64_t problems = 1, int64_t samples = 1, bool lockstep = false,
                                 const rollout_options& options = {},
                                 const result_sink& sink = {}) {
    std::vector<classroom::problem> set;
    std::vector<int64_t> indices;
    for (int64_t i = 0; i < problems; ++i) {
      set.push_back(
        {"What is 6 times " + std::to_string(7 + i) + "?", std::to_string(6 * (7 + i)), i + 1});
      indices.push_back(i);
    }
    auto generators = spawn();
    auto jobs = make_jobs(0, set, indices, samples, 1);
    auto out = lockstep ? run_lockstep(*system, setup, generators, std::move(jobs))
                        : run_rollout(*system, setup, generators, std::move(jobs), sink, options);
    for (auto* g : {&generators.tutor, &generators.student, &generators.judge})
      caf::anon_send_exit(*g, caf::exit_reason::user_shutdown);
    return out;
  }

  ~classroom_fixture() {
    system->await_all_actors_done();
  }
};

classroom::dialog_record only(const std::vector<dialog_result>& results) {
  REQUIRE(results.size() == 1);
  return results.front().record;
}

} // namespace

TEST_CASE("a guided dialog: tutor first, sessions resumed with only new messages, judged, solved") {
  classroom_fixture f;
  const auto results = f.run();
  const auto r = only(results);
  CHECK(r.status == "ok");
  CHECK(r.type == "guided");
  CHECK(r.tutor_turns == 3);
  REQUIRE(r.messages.size() == 5); // T S T S T
  CHECK(r.messages.front().from_tutor);

  const auto tutor = f.tutor_log->snapshot();
  REQUIRE(tutor.size() == 3);
  CHECK(tutor[0].open_session);
  CHECK(tutor[0].messages.size() == 1); // the system prompt alone
  CHECK(tutor[0].messages[0].role == "system");
  for (size_t i = 1; i < tutor.size(); ++i) {
    CHECK_FALSE(tutor[i].open_session);
    REQUIRE(tutor[i].messages.size() == 1); // only the student's new message
    CHECK(tutor[i].messages[0].role == "user");
    CHECK(tutor[i].session == tutor[0].session);
  }
  const auto student = f.student_log->snapshot();
  REQUIRE(student.size() == 3); // two turns and one request for K solutions
  CHECK(student[0].open_session);
  CHECK(student[0].messages.size() == 2); // persona + the tutor's first message
  CHECK(student[2].n == 4);
  CHECK(student[2].messages.back().content.find("\\boxed{}") != std::string::npos);

  // Judged with 2 verdicts in one request, solved 4 times, all correct.
  const auto judge = f.judge_log->snapshot();
  REQUIRE(judge.size() == 1);
  CHECK(judge[0].n == 2);
  REQUIRE(r.judgements.size() == 1);
  CHECK(r.judgements[0].verdicts.size() == 2);
  CHECK_FALSE(r.rejected);
  REQUIRE(r.solutions.size() == 4);
  for (const auto& s : r.solutions) {
    CHECK(s.correct);
    CHECK(s.extracted == "42");
  }
  CHECK(*r.reward.solve_rate == doctest::Approx(1.0));
  // Both sessions closed; the tutor's history came back for training.
  CHECK(f.tutor_log->closed == std::vector<std::string>{tutor[0].session});
  CHECK(f.student_log->closed.size() == 1);
  CHECK(results[0].tutor.tokens.size() == 3);
}

TEST_CASE("an attempted dialog: the student's one-off attempt comes first, wrapped") {
  classroom_fixture f;
  f.setup->forced_type = classroom::dialog_type::attempted;
  const auto r = only(f.run());
  CHECK(r.type == "attempted");
  REQUIRE(r.messages.size() == 6); // S T S T S T
  CHECK_FALSE(r.messages[0].from_tutor);
  CHECK(r.messages[0].content.find("I would multiply.") != std::string::npos);
  CHECK(r.messages[0].content.size() > std::string("I would multiply.").size());
  const auto student = f.student_log->snapshot();
  CHECK(student[0].session.empty()); // the attempt is no session turn
  REQUIRE(student[0].messages.size() == 1);
  CHECK(student[0].messages[0].role == "system");
  // The tutor's first prompt holds the wrapped attempt as the user's message.
  const auto tutor = f.tutor_log->snapshot();
  REQUIRE(tutor[0].messages.size() == 2);
  CHECK(tutor[0].messages[1].content == r.messages[0].content);
}

TEST_CASE("the end marker ends the dialog after that tutor turn, also inside a think block") {
  for (std::string reply :
       {"Well done! <end_of_conversation>", "<think>xyzzy <end_of_conversation></think>Bye!"}) {
    CAPTURE(reply);
    classroom_fixture f;
    f.tutor = [&](const generate_request& r) {
      return repeat(r, reply);
    };
    const auto r = only(f.run());
    CHECK(r.tutor_turns == 1);
    CHECK(r.ended_by_tutor);
    CHECK(r.messages.size() == 1);
    CHECK(r.reward.end_marker > 0);
    // The student's solution prompt never shows the marker or the thinking.
    const auto student = f.student_log->snapshot();
    REQUIRE(student.size() == 1);
    for (const auto& m : student[0].messages) {
      CHECK(m.content.find("end_of_conversation") == std::string::npos);
      CHECK(m.content.find("xyzzy") == std::string::npos);
    }
  }
}

TEST_CASE("the token budget ends the dialog after the message that crosses it") {
  classroom_fixture f;
  f.setup->limits.max_tutor_turns = 8;
  // "What is the first step?" is 23 tokens, "I would multiply." 17: T S T = 63 > 50.
  f.setup->limits.max_tokens_in_conversation = 50;
  const auto r = only(f.run());
  CHECK(r.messages.size() == 3);
  CHECK(r.tutor_turns == 2);
  CHECK(r.status == "ok");
}

TEST_CASE("a reply cut by a stop string counts every token it generated as content") {
  classroom_fixture f;
  f.setup->limits.max_tutor_turns = 1;
  f.tutor = [](const generate_request& r) {
    return repeat(r, "!stop-string:What is the first step?");
  };
  const auto r = only(f.run());
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].content == "What is the first step?");
  CHECK(r.messages[0].tokens == 23); // no end-of-turn token among its 23 generated tokens

  classroom_fixture ended;
  ended.setup->limits.max_tutor_turns = 1;
  const auto e = only(ended.run());
  REQUIRE(e.messages.size() == 1);
  CHECK(e.messages[0].tokens == 23); // 24 generated, the last one the end-of-turn token
}

TEST_CASE("hard mode: a rejecting judge ends the dialog with -lambda and no solutions") {
  classroom_fixture f;
  f.setup->weights.rejection_penalty = 0.75;
  f.judge = [](const generate_request& r) {
    return repeat(r, R"({"reasoning": "leaked", "decision": "REJECT"})");
  };
  const auto r = only(f.run());
  CHECK(r.rejected);
  CHECK(r.solutions.empty());
  CHECK_FALSE(r.reward.solve_rate.has_value());
  CHECK(r.reward.end == doctest::Approx(-0.75));
  CHECK(f.student_log->snapshot().size() == 2); // dialog turns only
  CHECK(f.student_log->closed.size() == 1);     // its session is still closed
}

TEST_CASE("soft mode: a rejection costs lambda, and the student still solves") {
  classroom_fixture f;
  f.setup->limits.ignore_rejected_judge = true;
  f.setup->weights.rejection_penalty = 0.25;
  f.judge = [](const generate_request& r) {
    return repeat(r, R"({"reasoning": "leaked", "decision": "REJECT"})");
  };
  const auto r = only(f.run());
  CHECK(r.rejected);
  CHECK(r.solutions.size() == 4);
  CHECK(r.reward.end == doctest::Approx(1.0 - 0.25));
}

TEST_CASE("without judges the judge is never asked") {
  classroom_fixture f;
  f.setup->limits.judge_attempts = 0;
  const auto r = only(f.run());
  CHECK(r.judgements.empty());
  CHECK(f.judge_log->snapshot().empty());
  CHECK(r.solutions.size() == 4);
}

TEST_CASE("unparsable verdicts are asked for again, then follow the policy") {
  for (bool rejects : {true, false}) {
    CAPTURE(rejects);
    classroom_fixture f;
    f.setup->limits.unparsed_rejects = rejects;
    f.judge = [](const generate_request& r) {
      return repeat(r, "I think it is fine?");
    };
    const auto r = only(f.run());
    CHECK(f.judge_log->snapshot().size() == 3); // judge_parse_rounds
    REQUIRE(r.judgements.size() == 1);
    CHECK(r.judgements[0].unparsed == 2);
    CHECK(r.rejected == rejects);
    CHECK(r.solutions.empty() == rejects);
  }
}

TEST_CASE("a verdict that parses in a later round fills only the missing ones") {
  classroom_fixture f;
  auto round = std::make_shared<int>(0);
  f.judge = [round](const generate_request& r) {
    // First round: one good verdict and one garbage; second round asks for one more.
    if ((*round)++ == 0)
      return std::vector<std::string>{R"({"decision": "OK", "reasoning": "a"})", "garbage"};
    CHECK(r.n == 1);
    return repeat(r, R"(```json
{"decision": "OK", "reasoning": "b"}
```)");
  };
  const auto r = only(f.run());
  CHECK(f.judge_log->snapshot().size() == 2);
  CHECK(r.judgements[0].unparsed == 0);
  CHECK_FALSE(r.rejected);
}

TEST_CASE("the rule judge needs no judge generator and rejects a stated answer") {
  classroom_fixture f;
  f.setup->rule_judge = true;
  f.setup->limits.judge_attempts = 1;
  f.tutor = [](const generate_request& r) {
    return repeat(r, "It is 42, of course.");
  };
  const auto r = only(f.run());
  CHECK(f.judge_log->snapshot().empty());
  CHECK(r.rejected);
  CHECK(r.judgements[0].verdicts[0].reasoning.find("42") != std::string::npos);
}

TEST_CASE("a problem's G samples share scenario, and samples get different seeds") {
  classroom_fixture f;
  f.setup->forced_type.reset();
  const auto results = f.run(3, 4);
  REQUIRE(results.size() == 12);
  for (size_t i = 0; i < results.size(); i += 4)
    for (size_t j = i + 1; j < i + 4; ++j) {
      CHECK(results[j].record.type == results[i].record.type);
      CHECK(results[j].record.student_name == results[i].record.student_name);
      CHECK(results[j].record.problem_index == results[i].record.problem_index);
    }
  std::set<uint64_t> seeds;
  for (const auto& r : f.tutor_log->snapshot())
    seeds.insert(r.seed);
  CHECK(seeds.size() == f.tutor_log->snapshot().size());
}

TEST_CASE("a generator that fails is retried, one that keeps failing fails only its dialog") {
  SUBCASE("two failures, then success") {
    classroom_fixture f;
    auto failures = std::make_shared<int>(0);
    f.student = [failures](const generate_request& r) {
      if (r.n == 1 && (*failures)++ < 2)
        return std::vector<std::string>{"!fail"};
      return repeat(r, r.n > 1 ? "\\boxed{42}" : "ok");
    };
    const auto r = only(f.run());
    CHECK(r.status == "ok");
    CHECK(r.solutions.size() == 4);
  }
  SUBCASE("always failing: recorded with the reason, sessions still closed") {
    classroom_fixture f;
    f.setup->limits.max_tutor_turns = 2;
    f.student = [](const generate_request&) {
      return std::vector<std::string>{"!fail"};
    };
    const auto results = f.run(2, 1);
    for (const auto& res : results) {
      CHECK(res.record.status == "failed");
      CHECK(res.record.error.find("student generator failed 3 times") != std::string::npos);
      CHECK(res.record.error.find("fell over") != std::string::npos);
      CHECK(res.tutor.tokens.empty()); // nothing to train on
    }
    CHECK(f.tutor_log->closed.size() == 2);
  }
  SUBCASE("a refused request is not retried") {
    classroom_fixture f;
    f.tutor = [](const generate_request&) {
      return std::vector<std::string>{"!refuse"};
    };
    const auto r = only(f.run());
    CHECK(r.status == "failed");
    CHECK(r.error.find("refused") != std::string::npos);
    CHECK(f.tutor_log->snapshot().size() == 1);
  }
}

TEST_CASE("the lock-step baseline produces the same records as the async schedule") {
  auto strip = [](std::vector<dialog_result> results) {
    std::vector<std::string> out;
    for (auto& r : results) {
      r.record.seconds = r.record.waiting_seconds = 0;
      out.push_back(classroom::to_json_line(r.record));
    }
    return out;
  };
  classroom_fixture async_run, lockstep_run;
  for (auto* f : {&async_run, &lockstep_run}) {
    f->setup->forced_type.reset();
    // Dialog lengths vary with the problem, so phases are uneven.
    f->tutor = [](const generate_request& r) {
      const bool early = r.messages.front().content.find("6 times 8") != std::string::npos;
      return repeat(r, early ? "Good. <end_of_conversation>" : "Go on.");
    };
  }
  const auto a = strip(async_run.run(3, 2, false));
  const auto b = strip(lockstep_run.run(3, 2, true));
  CHECK(a == b);
}

TEST_CASE("at most max_in_flight dialogs run at once, and every dialog still finishes") {
  classroom_fixture f;
  rollout_options options;
  options.max_in_flight = 2;
  std::vector<int64_t> finished;
  const auto results = f.run(8, 2, false, options, [&](const dialog_result& r) {
    finished.push_back(r.record.problem_index);
  });
  REQUIRE(results.size() == 16);
  for (const auto& r : results)
    CHECK(r.record.status == "ok");
  CHECK(finished.size() == 16);
  CHECK(f.tutor_log->most_open_sessions >= 1);
  CHECK(f.tutor_log->most_open_sessions <= 2);
  CHECK(f.tutor_log->open_sessions == 0);
}

TEST_CASE("a stopped rollout starts no more dialogs and returns the rest as abandoned") {
  classroom_fixture f;
  std::atomic<int> sunk{0};
  rollout_options options;
  options.max_in_flight = 1;
  options.stop = [&] {
    return sunk.load() >= 1;
  };
  const auto results = f.run(6, 1, false, options, [&](const dialog_result&) { ++sunk; });
  REQUIRE(results.size() == 6);
  CHECK(results[0].record.status == "ok");
  for (size_t i = 1; i < results.size(); ++i) {
    CHECK(results[i].record.status == abandoned_status);
    CHECK(results[i].record.problem_index == static_cast<int64_t>(i));
  }
  CHECK(sunk.load() == 1); // abandoned dialogs are not passed to the sink
  // Only the finished dialog ever reached the tutor.
  CHECK(f.tutor_log->closed.size() == 1);
}

namespace {

// Accepts every request and never answers (a hung peer); the promises are kept so that none is
// broken, which would answer with an error.
generator_actor::behavior_type
silent_generator(generator_actor::pointer self,
                 std::shared_ptr<std::vector<caf::response_promise>> held) {
  return {
    [=](generate_atom, const generate_request&) -> caf::result<generate_reply> {
      auto promise = self->make_response_promise<generate_reply>();
      held->push_back(promise);
      return promise;
    },
    [=](close_atom, const std::string&) -> caf::result<token_history> {
      auto promise = self->make_response_promise<token_history>();
      held->push_back(promise);
      return promise;
    },
    [=](status_atom) { return generator_status{}; },
    [=](cancel_atom, const std::string&) {},
    [=](weights_atom, int64_t version) { return version; },
  };
}

} // namespace

TEST_CASE("a generator that never answers fails its dialog after the request timeout") {
  classroom_fixture f;
  f.setup->request_timeout = std::chrono::milliseconds(200);
  f.setup->max_call_retries = 1;
  auto generators = f.spawn();
  auto held = std::make_shared<std::vector<caf::response_promise>>();
  caf::anon_send_exit(generators.student, caf::exit_reason::user_shutdown);
  generators.student = f.system->spawn(silent_generator, held);
  std::vector<classroom::problem> set = {{"What is 6 times 7?", "42", 1}};
  auto results = run_rollout(*f.system, f.setup, generators, make_jobs(0, set, {0}, 2, 1));
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CHECK(r.record.status == "failed");
    CHECK(r.record.error.find("timeout") != std::string::npos);
  }
  CHECK(held->size() >= 2); // the student was asked, and asked again
  for (auto* g : {&generators.tutor, &generators.student, &generators.judge})
    caf::anon_send_exit(*g, caf::exit_reason::user_shutdown);
}

TEST_CASE("an attempt job: the student alone solves K times from the attempt prompt, graded") {
  classroom_fixture f;
  f.student = [](const generate_request& r) {
    std::vector<std::string> out;
    for (int64_t i = 0; i < r.n; ++i)
      out.push_back(i % 4 == 0 ? "It is \\boxed{42}." : "Maybe \\boxed{41}.");
    return out;
  };
  f.tutor = [](const generate_request&) -> std::vector<std::string> {
    return {"!fail"}; // never asked: the log below stays empty
  };
  auto generators = f.spawn();
  auto jobs = make_jobs(0, {{"What is 6 times 7?", "42", 1}}, {0}, 1, 1);
  jobs[0].attempt_only = true;
  const auto r = only(run_rollout(*f.system, f.setup, generators, jobs));
  for (auto* g : {&generators.tutor, &generators.student, &generators.judge})
    caf::anon_send_exit(*g, caf::exit_reason::user_shutdown);
  CHECK(r.status == "ok");
  CHECK(r.id == "1/1/1/attempt"); // step 1, the problem on line 1, sample 1
  CHECK(r.type == "attempt");
  CHECK(r.messages.empty());
  CHECK(r.judgements.empty());
  REQUIRE(r.solutions.size() == 4); // number_student_attempts
  CHECK(r.solutions[0].correct);
  CHECK(r.solutions[0].extracted == "42");
  CHECK_FALSE(r.solutions[1].correct);
  REQUIRE(r.reward.solve_rate.has_value());
  CHECK(*r.reward.solve_rate == doctest::Approx(0.25));
  // One request: one user message with the problem, no session, n = K.
  const auto asked = f.student_log->snapshot();
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].n == 4);
  CHECK(asked[0].session.empty());
  REQUIRE(asked[0].messages.size() == 1);
  CHECK(asked[0].messages[0].role == "user");
  CHECK(asked[0].messages[0].content.find("What is 6 times 7?") != std::string::npos);
  CHECK(f.tutor_log->snapshot().empty());
  CHECK(dialog_id(jobs[0]) == r.id);
}
