// The generator actor as a thin shell around the engine: same tokens, exact session histories,
// concurrent requesters, cancellation in mailbox order, errors that do not stop it.
#include "actors/generator_actor.hpp"
#include "collectives/weight_channel.hpp"
#include "models/serving/engine.hpp"
#include "models/tensor/init_model.hpp"
#include "models/tensor/transformer.hpp"
#include "models/text/chat_format.hpp"
#include "models/text/tokenizer.hpp"
#include "tests/support/actor_system.hpp"
#include "tests/support/torch_doctest.hpp"

#include <caf/all.hpp>

#include <filesystem>

namespace fs = std::filesystem;
using namespace pedagogy;
using namespace pedagogy::actors;

namespace {

const auto timeout = std::chrono::seconds(120);

// A tiny model on disk and an actor system with one generator serving it.
struct fixture : pedagogy::testing::actor_system_fixture {
  fs::path dir = fs::temp_directory_path() / "pedagogy_generator_test";
  generator_actor generator;

  explicit fixture(int64_t kv_cache_tokens = 1 << 20, int64_t kv_block_tokens = 16)
    : actor_system_fixture(/*threads=*/2) {
    fs::remove_all(dir);
    models::init_options init;
    init.family = models::model_family::qwen2;
    init.seed = 3;
    init.out = dir;
    models::init_model(init);
    generator_setup setup;
    setup.role = "tutor";
    setup.model = dir;
    setup.kv_cache_tokens = kv_cache_tokens;
    setup.kv_block_tokens = kv_block_tokens;
    generator = spawn_generator(*system, setup);
  }
  ~fixture() {
    {
      caf::scoped_actor self{*system};
      self->send_exit(generator, caf::exit_reason::user_shutdown);
      self->wait_for(generator);
    }
    generator = nullptr; // no handle may outlive the system
    system.reset();
    fs::remove_all(dir);
  }
};

generate_request greedy(std::vector<models::chat_message> messages, int64_t max_new) {
  generate_request r;
  r.messages = std::move(messages);
  r.temperature = 0;
  r.max_new_tokens = max_new;
  return r;
}

generate_reply ask(caf::scoped_actor& self, const generator_actor& g, const generate_request& r) {
  generate_reply out;
  self->request(g, timeout, generate_atom::value, r)
    .receive([&](generate_reply& reply) { out = std::move(reply); },
             [&](caf::error& e) { FAIL("generate failed: " << self->system().render(e)); });
  return out;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

} // namespace

TEST_CASE("the generator answers with the tokens the engine produces for the rendered chat") {
  fixture f;
  caf::scoped_actor self{*f.system};
  const std::vector<models::chat_message> chat = {{"system", "You tutor."},
                                                  {"user", "What is 2+2?"}};
  auto reply = ask(self, f.generator, greedy(chat, 6));
  REQUIRE(reply.completions.size() == 1);

  // The same work done directly with the engine.
  auto model = models::transformer::load(f.dir, at::kCPU, at::kFloat);
  auto tok = models::tokenizer::from_file(f.dir / "tokenizer.json");
  auto format = models::chat_format::from_model_dir(f.dir);
  models::engine e(model, tok, {});
  models::generation_request direct;
  direct.tokens =
    tok.encode(format.render({{"system", "You tutor."}, {"user", "What is 2+2?"}}, true));
  direct.params.temperature = 0;
  direct.params.max_new_tokens = 6;
  direct.params.stop_token_ids = {*tok.token_to_id("<|im_end|>"),
                                  *tok.token_to_id("<|endoftext|>")};
  e.submit(direct);
  std::vector<models::generation_result> results;
  while (e.has_work())
    for (auto& r : e.step())
      results.push_back(std::move(r));
  CHECK(reply.completions[0].tokens == results.at(0).completions.at(0).tokens);
  CHECK(reply.completions[0].text == results.at(0).completions.at(0).text);
}

TEST_CASE(
  "a session's history is the rendered prompt, the samples and the continuations, exactly") {
  fixture f;
  caf::scoped_actor self{*f.system};
  auto tok = models::tokenizer::from_file(f.dir / "tokenizer.json");
  auto format = models::chat_format::from_model_dir(f.dir);

  auto first = greedy({{"system", "You tutor."}, {"user", "Solve 3x = 9."}}, 5);
  first.session = "dialog-1";
  first.open_session = true;
  auto r1 = ask(self, f.generator, first);
  auto second = greedy({{"user", "Is it 3?"}}, 4);
  second.session = "dialog-1";
  auto r2 = ask(self, f.generator, second);

  token_history history;
  self->request(f.generator, timeout, close_atom::value, std::string("dialog-1"))
    .receive([&](token_history& h) { history = std::move(h); },
             [&](caf::error& e) { FAIL(self->system().render(e)); });
  const bool closed = r1.completions[0].finish_reason == "stop";
  auto expected =
    tok.encode(format.render({{"system", "You tutor."}, {"user", "Solve 3x = 9."}}, true));
  expected = concat(expected, r1.completions[0].tokens);
  expected =
    concat(expected, tok.encode(format.continuation({{"user", "Is it 3?"}}, true, closed)));
  expected = concat(expected, r2.completions[0].tokens);
  CHECK(history.tokens == expected);
  CHECK(std::count(history.sampled.begin(), history.sampled.end(), 1) == 5 + 4);
}

TEST_CASE("many requesters are served together, and the status counts them") {
  fixture f;
  caf::scoped_actor self{*f.system};
  // All requests are in the mailbox before the first reply: the engine batches them.
  using handle =
    caf::response_handle<caf::blocking_actor, caf::detail::type_list<generate_reply>, true>;
  std::vector<handle> handles;
  for (int i = 0; i < 6; ++i) {
    auto r = greedy({{"user", std::string(static_cast<size_t>(i + 1), 'a')}}, 5);
    r.n = i % 2 + 1;
    handles.push_back(self->request(f.generator, timeout, generate_atom::value, r));
  }
  int answered = 0;
  for (auto& h : handles)
    h.receive(
      [&](generate_reply& reply) { answered += static_cast<int>(reply.completions.size()); },
      [&](caf::error& e) { FAIL(self->system().render(e)); });
  CHECK(answered == 9);
  self->request(f.generator, timeout, status_atom::value)
    .receive(
      [&](generator_status& s) {
        CHECK(s.role == "tutor");
        CHECK(s.generated == 9 * 5);
        CHECK(s.steps < 9 * 5); // fewer forwards than tokens: requests shared steps
      },
      [&](caf::error& e) { FAIL(self->system().render(e)); });
}

TEST_CASE("the status reports KV memory in whole blocks of the configured size") {
  fixture f(1000, 7); // 142 blocks of 7 tokens: 994 tokens, the 6 left over are never used
  caf::scoped_actor self{*f.system};
  auto r = greedy({{"user", "Keep this in the cache."}}, 5);
  r.session = "kept";
  r.open_session = true;
  const auto reply = ask(self, f.generator, r);
  REQUIRE(reply.completions.size() == 1);
  self->request(f.generator, timeout, status_atom::value)
    .receive(
      [&](generator_status& s) {
        CHECK(s.kv_capacity == 994);
        CHECK(s.cached_tokens > 5);
        // One session, no forks: its tokens rounded up to whole blocks of 7.
        CHECK(s.kv_held_tokens == (s.cached_tokens + 6) / 7 * 7);
      },
      [&](caf::error& e) { FAIL(self->system().render(e)); });
}

TEST_CASE("a cancel queued behind its request finishes it as cancelled") {
  fixture f;
  caf::scoped_actor self{*f.system};
  auto r = greedy({{"user", "Talk for a long time."}}, 200);
  r.session = "long";
  r.open_session = true;
  // Mailbox order: generate, cancel, then the generator's own first step.
  auto handle = self->request(f.generator, timeout, generate_atom::value, r);
  self->send(f.generator, cancel_atom::value, std::string("long"));
  handle.receive(
    [&](generate_reply& reply) { CHECK(reply.completions[0].finish_reason == "cancelled"); },
    [&](caf::error& e) { FAIL(self->system().render(e)); });
}

TEST_CASE("bad requests get an error and the generator keeps serving") {
  fixture f;
  caf::scoped_actor self{*f.system};
  auto unknown = greedy({{"user", "hi"}}, 3);
  unknown.session = "never-opened";
  std::string message;
  self->request(f.generator, timeout, generate_atom::value, unknown)
    .receive([&](generate_reply&) { FAIL("an unknown session was accepted"); },
             [&](caf::error& e) { message = self->system().render(e); });
  CHECK(message.find("unknown session 'never-opened'") != std::string::npos);

  auto zero = greedy({{"user", "hi"}}, 3);
  zero.n = 0;
  self->request(f.generator, timeout, generate_atom::value, zero)
    .receive([&](generate_reply&) { FAIL("n = 0 was accepted"); }, [&](caf::error&) {});
  auto role = greedy({{"narrator", "hi"}}, 3);
  self->request(f.generator, timeout, generate_atom::value, role)
    .receive([&](generate_reply&) { FAIL("an unknown role was accepted"); }, [&](caf::error&) {});

  CHECK(ask(self, f.generator, greedy({{"user", "hi"}}, 3)).completions[0].tokens.size() == 3);
}

TEST_CASE("weights from the channel replace the model's at a step boundary and tag later tokens") {
  fixture f;
  caf::scoped_actor self{*f.system};
  auto channel = std::make_shared<local_weight_channel>();
  generator_setup setup;
  setup.role = "tutor";
  setup.model = f.dir;
  setup.weights = channel;
  auto tutor = spawn_generator(*f.system, setup);
  // Another model of the same shape, saved so a plain generator can serve it as the reference.
  const fs::path other_dir = f.dir.string() + "_other";
  fs::remove_all(other_dir);
  auto other =
    models::transformer::random(models::model_config::load(f.dir), 99, at::kCPU, at::kFloat);
  other.save(other_dir);
  fs::copy_file(f.dir / "tokenizer.json", other_dir / "tokenizer.json");
  fs::copy_file(f.dir / "tokenizer_config.json", other_dir / "tokenizer_config.json");
  setup.model = other_dir;
  setup.weights = nullptr;
  auto reference = spawn_generator(*f.system, setup);

  const std::vector<models::chat_message> chat = {{"system", "You tutor."},
                                                  {"user", "What is 2+2?"}};
  const auto before = ask(self, tutor, greedy(chat, 8));
  channel->offer(other.named_parameters(), 1);
  self->request(tutor, timeout, weights_atom::value, int64_t{1})
    .receive([&](int64_t version) { CHECK(version == 1); },
             [&](caf::error& e) { FAIL("weights failed: " << self->system().render(e)); });
  const auto after = ask(self, tutor, greedy(chat, 8));
  const auto expected = ask(self, reference, greedy(chat, 8));
  CHECK(before.completions[0].weights_version == 0);
  CHECK(after.completions[0].weights_version == 1);
  CHECK(after.completions[0].tokens == expected.completions[0].tokens);
  CHECK(after.completions[0].logprobs == expected.completions[0].logprobs);
  // Random tiny models may agree on greedy tokens; their probabilities differ.
  CHECK(before.completions[0].logprobs != after.completions[0].logprobs);

  // A frozen generator (no channel) refuses; a version never offered is an error, not a crash.
  bool refused = false;
  self->request(reference, timeout, weights_atom::value, int64_t{1})
    .receive([&](int64_t) {}, [&](caf::error&) { refused = true; });
  CHECK(refused);

  for (auto* g : {&tutor, &reference}) {
    self->send_exit(*g, caf::exit_reason::user_shutdown);
    self->wait_for(*g);
    *g = nullptr;
  }
  fs::remove_all(other_dir);
}
