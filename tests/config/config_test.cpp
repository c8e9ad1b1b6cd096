// The config schema, loader, overrides, cross-field rules and printer.
#include "config/config.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>

namespace cfg = pedagogy::config;
using pedagogy::input_error;

namespace {

const std::filesystem::path source_dir = PEDAGOGY_SOURCE_DIR;

// Runs `body`, which must throw input_error, and returns that error for inspection.
template <class F>
input_error expect_input_error(F&& body) {
  try {
    body();
  } catch (const input_error& e) {
    return e;
  }
  FAIL("expected an input_error");
  return input_error("", "");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  auto path = std::filesystem::temp_directory_path() / ("pedagogy_config_test_" + name);
  std::ofstream(path) << text;
  return path;
}

} // namespace

TEST_CASE("the defaults follow the reference's knobs, with its known bugs fixed") {
  cfg::config c;
  CHECK(c.classroom.max_tutor_turns == 8); // the reference's 15 messages = 8 tutor turns
  CHECK(c.classroom.max_tokens_in_conversation == 8192);
  CHECK(c.classroom.max_tokens_per_turn == 1024);
  CHECK(c.classroom.max_tokens_per_student_attempt == 3900);
  CHECK(c.classroom.max_tokens_per_judge_attempt == 2048);
  CHECK(c.classroom.number_student_attempts == 8);
  CHECK(c.classroom.number_judge_attempts == 2);
  CHECK(c.classroom.judge_parse_rounds == 5);
  CHECK(c.classroom.rejection_penalty == doctest::Approx(0.25));
  CHECK_FALSE(c.classroom.ignore_rejected_judge); // hard mode, as the dataclass default
  CHECK(c.classroom.judge_rules ==
        std::vector<std::string>{"does_not_leak_answer", "follows_pedagogical_values"});
  CHECK(c.classroom.student_names.size() == 9);
  CHECK(c.classroom.student_names.back().empty()); // the unnamed student
  // Fixed on purpose: unparsable verdicts reject, and the tutor samples the full softmax.
  CHECK(c.classroom.unparsed_verdict == cfg::verdict_policy::reject);
  CHECK(c.tutor.sampling.top_k == 0);
  CHECK(c.student.sampling.top_k == 50);
  CHECK(c.tutor.sampling.temperature == doctest::Approx(0.9));
  CHECK(c.train.problems_per_step == 16);
  CHECK(c.train.samples_per_problem == 8);
  CHECK(c.train.micro_batch_size == 2);
  CHECK(c.train.mu == 2);
  CHECK(c.train.learning_rate == doctest::Approx(5e-7));
  CHECK(c.train.beta == doctest::Approx(0.001));
  CHECK(c.train.epsilon == doctest::Approx(0.2));
  CHECK(c.train.std_eps == doctest::Approx(1e-4));
  CHECK(c.train.max_grad_norm == doctest::Approx(1.0));
  CHECK(c.train.seed == 42);
  CHECK(c.reward.end_marker_bonus == doctest::Approx(0.1));
  CHECK(c.reward.length_penalty == doctest::Approx(0.5));
}

TEST_CASE("the defaults pass every rule, and an empty file means the defaults") {
  CHECK_NOTHROW(cfg::validate(cfg::config{}, "defaults"));
  CHECK(cfg::load_string("", "empty.toml") == cfg::config{});
  CHECK(cfg::load_string("# only a comment\n[train]\n", "comment.toml") == cfg::config{});
}

TEST_CASE("every preset loads and round-trips through to_toml") {
  int presets = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir / "config")) {
    if (entry.path().extension() != ".toml")
      continue;
    ++presets;
    CAPTURE(entry.path().string());
    cfg::config loaded = cfg::load_file(entry.path());
    CHECK(loaded != cfg::config{}); // a preset that changes nothing is a mistake
    std::string shown = cfg::to_toml(loaded);
    cfg::config reloaded = cfg::load_string(shown, "shown.toml");
    CHECK(reloaded == loaded);
    CHECK(cfg::to_toml(reloaded) == shown);
  }
  CHECK(presets >= 3);
}

TEST_CASE("the presets set what they promise") {
  auto tiny = cfg::load_file(source_dir / "config/tiny.toml");
  CHECK(tiny.tutor.device == "cpu");
  CHECK(tiny.judge.backend == cfg::backend_kind::rule);
  CHECK(tiny.cluster.mode == cfg::cluster_mode::local);

  auto paper = cfg::load_file(source_dir / "config/qwen2.5-7b.toml");
  CHECK(paper.train.problems_per_step == 16);
  CHECK(paper.train.samples_per_problem == 8);
  CHECK(paper.train.learning_rate == doctest::Approx(5e-7));
  CHECK(paper.train.beta == doctest::Approx(0.001));
  CHECK(paper.train.mu == 2);
  CHECK(paper.classroom.rejection_penalty == doctest::Approx(1.0));
  CHECK_FALSE(paper.classroom.ignore_rejected_judge);
  CHECK(paper.classroom.number_student_attempts == 8);
  CHECK(paper.classroom.judge_rules.size() == 2);
  CHECK(paper.classroom.number_judge_attempts == 2);
  CHECK(paper.tutor.dtype == cfg::dtype_kind::bfloat16);

  auto eval = cfg::load_file(source_dir / "config/eval.toml");
  CHECK(eval.classroom.ignore_rejected_judge); // soft mode: every dialog is judged and solved
  CHECK(eval.judge.backend == cfg::backend_kind::openai);
  CHECK(eval.eval.max_problems == 500);
}

TEST_CASE("to_toml keeps awkward strings, floats and lists intact") {
  cfg::config c;
  c.tutor.model = "dir with \"quotes\", back\\slash, tab\t, newline\n and ünïcødé 数学";
  c.train.learning_rate = 1e-300;
  c.train.adam_eps = 0.1 + 0.2;    // not representable as a short decimal
  c.reward.end_marker_bonus = 3.0; // integral value, must stay a float
  c.classroom.judge_rules = {};
  c.classroom.number_judge_attempts = 0;
  c.cluster.learner_ranks = {0, 7};
  std::string shown = cfg::to_toml(c);
  CHECK(contains(shown, "end_marker_bonus = 3.0"));
  CHECK(cfg::load_string(shown, "shown.toml") == c);
}

TEST_CASE("overrides set every kind of key") {
  cfg::config c;
  cfg::apply_override(c, "classroom.ignore_rejected_judge=true");
  CHECK(c.classroom.ignore_rejected_judge);
  cfg::apply_override(c, "train.mu=1");
  CHECK(c.train.mu == 1);
  cfg::apply_override(c, "train.learning_rate=1e-6");
  CHECK(c.train.learning_rate == doctest::Approx(1e-6));
  cfg::apply_override(c, "train.beta=0"); // an integer literal for a float key
  CHECK(c.train.beta == 0.0);
  cfg::apply_override(c, "tutor.device=cuda:1"); // a bare word for a string key
  CHECK(c.tutor.device == "cuda:1");
  cfg::apply_override(c, "tutor.model=\"/models/with space\"");
  CHECK(c.tutor.model == "/models/with space");
  cfg::apply_override(c, "judge.backend=rule"); // an enum
  CHECK(c.judge.backend == cfg::backend_kind::rule);
  cfg::apply_override(c, "classroom.judge_rules=[\"does_not_leak_answer\"]");
  CHECK(c.classroom.judge_rules == std::vector<std::string>{"does_not_leak_answer"});
  cfg::apply_override(c, "cluster.learner_ranks=[0, 1]");
  CHECK(c.cluster.learner_ranks == std::vector<int64_t>{0, 1});
  cfg::apply_override(c, "student.sampling.temperature=0.6"); // a nested table
  CHECK(c.student.sampling.temperature == doctest::Approx(0.6));
  CHECK(c.tutor.sampling.temperature == doctest::Approx(0.9)); // other roles untouched
}

TEST_CASE("overrides apply after the file, in order") {
  auto c = cfg::load_string("[train]\nmu = 3\n", "x.toml", {"train.mu=4", "train.mu=1"});
  CHECK(c.train.mu == 1);
}

TEST_CASE("a bad override names itself and says what to write") {
  cfg::config c;
  auto no_equals = expect_input_error([&] { cfg::apply_override(c, "train.mu"); });
  CHECK(no_equals.where() == "override 'train.mu'");
  CHECK(contains(no_equals.hint(), "train.learning_rate=1e-6"));

  auto wrong_type = expect_input_error([&] { cfg::apply_override(c, "train.mu=1.5"); });
  CHECK(contains(wrong_type.problem(), "train.mu must be an integer, but is a float"));

  auto not_toml = expect_input_error([&] { cfg::apply_override(c, "train.mu=abc"); });
  CHECK(contains(not_toml.problem(), "cannot parse 'abc'"));

  auto bad_enum = expect_input_error([&] { cfg::apply_override(c, "tutor.dtype=fp16"); });
  CHECK(contains(bad_enum.hint(), "auto | float32 | bfloat16"));

  auto table = expect_input_error([&] { cfg::apply_override(c, "tutor.sampling=1"); });
  CHECK(contains(table.hint(), "tutor.sampling.temperature="));

  auto empty = expect_input_error([&] { cfg::apply_override(c, "train.mu="); });
  CHECK(contains(empty.problem(), "no value"));

  auto unknown = expect_input_error([&] { cfg::apply_override(c, "train.learnig_rate=1"); });
  CHECK(contains(unknown.hint(), "did you mean 'train.learning_rate'?"));
  CHECK(c == cfg::config{}); // nothing was half-applied
}

TEST_CASE("an unknown key names the file, line and column and the nearest valid key") {
  auto typo = expect_input_error(
    [] { cfg::load_string("[train]\nmu = 2\nlerning_rate = 1e-6\n", "typo.toml"); });
  CHECK(typo.where() == "typo.toml:3:1");
  CHECK(contains(typo.problem(), "unknown key 'train.lerning_rate' in [train]"));
  CHECK(typo.hint() == "did you mean 'train.learning_rate'?");

  auto wrong_table =
    expect_input_error([] { cfg::load_string("[classroom]\nseed = 1\n", "t.toml"); });
  CHECK(wrong_table.hint() == "did you mean 'train.seed'?");

  auto reference_name =
    expect_input_error([] { cfg::load_string("[classroom]\nmax_turns = 15\n", "t.toml"); });
  CHECK(reference_name.hint() == "did you mean 'classroom.max_tutor_turns'?");

  auto nested =
    expect_input_error([] { cfg::load_string("[tutor.sampling]\ntop_pp = 1\n", "t.toml"); });
  CHECK(nested.hint() == "did you mean 'tutor.sampling.top_p'?");

  auto table = expect_input_error([] { cfg::load_string("[trian]\nmu = 1\n", "t.toml"); });
  CHECK(contains(table.problem(), "unknown table 'trian'"));
  CHECK(table.hint() == "did you mean 'train'?");

  auto nonsense =
    expect_input_error([] { cfg::load_string("[train]\nzzzzzzzzzz = 1\n", "t.toml"); });
  CHECK(contains(nonsense.hint(), "pedagogy config show"));
}

TEST_CASE("a TOML syntax error gives file, line and column") {
  auto e = expect_input_error(
    [] { cfg::load_string("[train]\nmu = 2\nlearning_rate = \n", "broken.toml"); });
  CHECK(e.where() == "broken.toml:3:17");
  CHECK(contains(e.problem(), "TOML syntax error"));

  auto unterminated =
    expect_input_error([] { cfg::load_string("[tutor]\nmodel = \"abc\n", "quote.toml"); });
  CHECK(contains(unterminated.where(), "quote.toml:2:"));
}

TEST_CASE("a value of the wrong type names the key and where it is") {
  auto e = expect_input_error([] { cfg::load_string("[train]\nmu = \"2\"\n", "types.toml"); });
  CHECK(e.where() == "types.toml:2:6");
  CHECK(e.problem() == "train.mu must be an integer, but is a string");

  auto list = expect_input_error(
    [] { cfg::load_string("[classroom]\njudge_rules = [\"a\", 3]\n", "types.toml"); });
  CHECK(contains(list.problem(), "classroom.judge_rules[1] must be a string"));

  auto table = expect_input_error([] { cfg::load_string("train = 3\n", "types.toml"); });
  CHECK(contains(table.problem(), "train must be a table"));
}

TEST_CASE("failed cross-field rules say which keys clash and how to fix them") {
  auto batch =
    expect_input_error([] { cfg::load_string("[train]\nmicro_batch_size = 3\n", "rules.toml"); });
  CHECK(batch.where() == "rules.toml");
  CHECK(contains(batch.problem(), "16 x 8 = 128 sequences"));
  CHECK(contains(batch.hint(), "1, 2, 4, 8"));

  auto learners = expect_input_error([] {
    cfg::load_string("[train]\nmicro_batch_size = 16\n[cluster]\nlearner_ranks = [0, 1, 2]\n",
                     "rules.toml");
  });
  CHECK(contains(learners.problem(), "on 3 learner(s)"));

  auto judges =
    expect_input_error([] { cfg::load_string("[classroom]\njudge_rules = []\n", "rules.toml"); });
  CHECK(contains(judges.hint(), "number_judge_attempts = 0"));
  CHECK_NOTHROW(
    cfg::load_string("[classroom]\njudge_rules = []\nnumber_judge_attempts = 0\n", "rules.toml"));

  auto turn = expect_input_error(
    [] { cfg::load_string("[classroom]\nmax_tokens_per_turn = 9000\n", "rules.toml"); });
  CHECK(contains(turn.problem(), "exceeds classroom.max_tokens_in_conversation"));

  auto clip = expect_input_error(
    [] { cfg::load_string("[train]\nepsilon = 0.2\nepsilon_high = 0.1\n", "rules.toml"); });
  CHECK(contains(clip.problem(), "epsilon_high"));

  auto group = expect_input_error(
    [] { cfg::load_string("[train]\nsamples_per_problem = 1\n", "rules.toml"); });
  CHECK(contains(group.hint(), "every advantage is 0"));

  auto openai =
    expect_input_error([] { cfg::load_string("[student]\nbackend = \"openai\"\n", "rules.toml"); });
  CHECK(contains(openai.problem(), "student.openai.base_url"));

  auto rule =
    expect_input_error([] { cfg::load_string("[tutor]\nbackend = \"rule\"\n", "rules.toml"); });
  CHECK(contains(rule.problem(), "only available for the judge"));

  auto block = expect_input_error([] {
    cfg::load_string("[student]\nkv_cache_tokens = 10\nkv_block_tokens = 16\n", "rules.toml");
  });
  CHECK(contains(block.problem(), "student.kv_cache_tokens = 10"));
  CHECK(contains(block.problem(), "student.kv_block_tokens = 16"));
  CHECK_NOTHROW(
    cfg::load_string("[student]\nkv_cache_tokens = 16\nkv_block_tokens = 16\n", "rules.toml"));

  auto not_finite =
    expect_input_error([] { cfg::load_string("[train]\nlearning_rate = nan\n", "rules.toml"); });
  CHECK(contains(not_finite.problem(), "train.learning_rate"));

  auto level =
    expect_input_error([] { cfg::load_string("[logging]\nlevel = \"loud\"\n", "rules.toml"); });
  CHECK(contains(level.where(), "logging.level"));
}

TEST_CASE("a missing or unreadable config file is reported with its path") {
  auto missing = expect_input_error([] { cfg::load_file("/nonexistent/pedagogy.toml"); });
  CHECK(missing.where() == "/nonexistent/pedagogy.toml");
  CHECK(contains(missing.problem(), "not found"));

  auto directory =
    expect_input_error([] { cfg::load_file(std::filesystem::temp_directory_path()); });
  CHECK(contains(directory.problem(), "is a folder, not a regular file"));

  // Neither blocks: a FIFO no one writes to (which hung `config show` until killed), nor
  // /proc/self/mem, which is "regular" but fails its first read (and loaded as the defaults).
  const auto fifo = std::filesystem::temp_directory_path() / "pedagogy_config_test_fifo.toml";
  std::filesystem::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto pipe = expect_input_error([&] { cfg::load_file(fifo); });
  CHECK(pipe.where() == fifo.string());
  CHECK(contains(pipe.problem(), "is a FIFO (named pipe), not a regular file"));
  std::filesystem::remove(fifo);
  auto memory = expect_input_error([] { cfg::load_file("/proc/self/mem"); });
  CHECK(contains(memory.problem(), "reading failed"));

  auto file = write_temp("bad_type.toml", "[inspect]\nport = 70000\n");
  auto port = expect_input_error([&] { cfg::load_file(file); });
  CHECK(port.where() == file.string() + ":2:8"); // refused where it was written
  CHECK(contains(port.problem(), "inspect.port = 70000"));
  std::filesystem::remove(file);
}

TEST_CASE("every key is listed once, in schema order") {
  auto keys = cfg::key_paths();
  CHECK(keys.front() == "tutor");
  CHECK(std::find(keys.begin(), keys.end(), "tutor.sampling.temperature") != keys.end());
  std::set<std::string> unique(keys.begin(), keys.end());
  CHECK(unique.size() == keys.size());
  CHECK(cfg::nearest_key("inspect.prot") == "inspect.port");
  CHECK(cfg::nearest_key("completely.unrelated.thing") == "");
}

namespace {

// The keys of the schema whose printed default ("key = value" under a header) `is_kind` accepts,
// so that a key added later is covered without editing these tests.
std::vector<std::string>
keys_whose_default(const std::function<bool(const std::string&)>& is_kind) {
  std::vector<std::string> keys;
  std::string table;
  std::istringstream lines(cfg::to_toml(cfg::config{}));
  for (std::string line; std::getline(lines, line);) {
    if (line.size() > 2 && line.front() == '[') {
      table = line.substr(1, line.size() - 2) + ".";
      continue;
    }
    auto eq = line.find(" = ");
    if (eq != std::string::npos && is_kind(line.substr(eq + 3)))
      keys.push_back(table + line.substr(0, eq));
  }
  return keys;
}

std::vector<std::string> integer_keys() {
  return keys_whose_default([](const std::string& value) {
    return !value.empty() && value.find_first_not_of("-0123456789") == std::string::npos;
  });
}

std::vector<std::string> real_keys() {
  return keys_whose_default([](const std::string& value) {
    return !value.empty() && value.find_first_not_of("-0123456789.e+") == std::string::npos &&
           value.find_first_of(".e") != std::string::npos;
  });
}

} // namespace

TEST_CASE("every integer key has a maximum, and a value beyond it names key, value and bound") {
  auto keys = integer_keys();
  CHECK(keys.size() > 30);
  for (const auto& key : keys) {
    CAPTURE(key);
    const std::string assignment = key + "=9223372036854775807";
    auto e = expect_input_error([&] { cfg::load_string("", "x.toml", {assignment}); });
    CHECK(e.where() == fmt::format("override '{}'", assignment));
    CHECK(contains(e.problem(), key));
    CHECK(contains(e.problem(), "9223372036854775807"));
    CHECK_FALSE(e.hint().empty());
  }
  for (const auto& key : {"cluster.learner_ranks", "tutor.ranks"}) {
    CAPTURE(key);
    auto e = expect_input_error([&] {
      cfg::config c;
      cfg::apply_override(c, fmt::format("{}=[9223372036854775807]", key));
    });
    CHECK(contains(e.problem(), "9223372036854775807"));
  }
}

TEST_CASE("every real key has a range, and a value past it names key, value and range") {
  // 1e308 in train.epsilon_high or ped.max_gap stopped a run with "value cannot be converted to
  // type float without overflow", naming no key; 1e12 in an OpenAI timeout overflowed the
  // deadline arithmetic, so a healthy server's answers all "timed out".
  auto keys = real_keys();
  CHECK(keys.size() > 30);
  for (const auto& key : keys)
    for (const char* value : {"1e308", "-1e308", "nan", "inf"}) {
      CAPTURE(key);
      CAPTURE(value);
      const std::string assignment = fmt::format("{}={}", key, value);
      auto e = expect_input_error([&] { cfg::load_string("", "x.toml", {assignment}); });
      CHECK(e.where() == fmt::format("override '{}'", assignment));
      CHECK(contains(e.problem(), key));
      CHECK_FALSE(e.hint().empty());
    }
  auto timeout =
    expect_input_error([] { cfg::load_string("", "x.toml", {"student.openai.timeout_s=1e12"}); });
  CHECK(timeout.problem() == "student.openai.timeout_s = 1000000000000 must be in (0, 604800]");
  auto in_file =
    expect_input_error([] { cfg::load_string("[train]\nepsilon_high = 1e308\n", "clip.toml"); });
  CHECK(in_file.where() == "clip.toml:2:16");
  CHECK(contains(in_file.problem(), "train.epsilon_high = 1e+308 must be in [0, 10]"));
  // The ends of a range are where the schema puts them.
  CHECK_NOTHROW(cfg::load_string("", "x.toml", {"tutor.sampling.top_p=1"}));
  CHECK_THROWS_AS(cfg::load_string("", "x.toml", {"tutor.sampling.top_p=0"}), input_error);
  CHECK_NOTHROW(cfg::load_string("", "x.toml", {"inspect.linger_s=-1"}));
  CHECK_THROWS_AS(cfg::load_string("", "x.toml", {"inspect.linger_s=-0.5"}), input_error);
}

TEST_CASE("a string holding a NUL character is refused, since paths and names would stop at it") {
  auto e = expect_input_error(
    [] { cfg::load_string("[logging]\nrun_dir = \"runs/a\\u0000b\"\n", "nul.toml"); });
  CHECK(e.where() == "nul.toml:2:11");
  CHECK(contains(e.problem(), "logging.run_dir contains a NUL"));
  auto listed = expect_input_error(
    [] { cfg::load_string("[classroom]\npersonas = [\"a\\u0000\"]\n", "nul.toml"); });
  CHECK(contains(listed.problem(), "classroom.personas[0]"));
}

TEST_CASE("an override that does not parse gets a hint for its key's type") {
  auto real =
    expect_input_error([] { cfg::load_string("", "x.toml", {"train.learning_rate=abc"}); });
  CHECK(contains(real.hint(), "write a number"));
  CHECK_FALSE(contains(real.hint(), "quote strings"));
  auto whole = expect_input_error([] { cfg::load_string("", "x.toml", {"train.mu=two"}); });
  CHECK(contains(whole.hint(), "whole number"));
  auto flag =
    expect_input_error([] { cfg::load_string("", "x.toml", {"classroom.use_thinking=yes"}); });
  CHECK(contains(flag.hint(), "true or false"));
  auto list = expect_input_error([] { cfg::load_string("", "x.toml", {"classroom.personas=[a"}); });
  CHECK(contains(list.hint(), "quote strings"));
}

TEST_CASE("a secret is never written where the resolved config is saved or shown") {
  auto c = cfg::load_string("", "x.toml", {"inspect.token=hunter2-secret"});
  CHECK(c.inspect.token == "hunter2-secret");
  const std::string text = cfg::to_toml(c);
  CHECK_FALSE(contains(text, "hunter2"));
  CHECK(contains(text, "token = \"\" # redacted"));
  // What was saved still loads, with the secret left to be given again.
  auto reloaded = cfg::load_string(text, "saved.toml");
  CHECK(reloaded.inspect.token.empty());
}

TEST_CASE("the bounds that stopped real runs are refused with the bound and a hint") {
  // 1000 threads hung the actor system; 2^32 samples ran into bad_alloc after 43 s; 2^63-1
  // attempts overflowed the KV-cache size check.
  auto threads = expect_input_error(
    [] { cfg::load_string("[cluster]\nscheduler_threads = 1000\n", "threads.toml"); });
  CHECK(threads.where() == "threads.toml:2:21");
  CHECK(threads.problem() == "cluster.scheduler_threads = 1000 is above the maximum 256");
  CHECK(contains(threads.hint(), "per core"));

  auto samples = expect_input_error(
    [] { cfg::load_string("", "x.toml", {"train.samples_per_problem=4294967296"}); });
  CHECK(contains(samples.problem(), "train.samples_per_problem = 4294967296 is above the maximum"));

  auto attempts = expect_input_error([] {
    cfg::load_string("[classroom]\nnumber_student_attempts = 9223372036854775807\n", "k.toml");
  });
  CHECK(contains(attempts.problem(), "classroom.number_student_attempts"));

  auto below = expect_input_error([] { cfg::load_string("[train]\nmu = 0\n", "mu.toml"); });
  CHECK(below.where() == "mu.toml:2:6");
  CHECK(below.problem() == "train.mu = 0 is below the minimum 1");

  cfg::config c;
  c.cluster.torch_threads = 100000; // a config built in code meets the same bound
  auto built = expect_input_error([&] { cfg::validate(c, "code"); });
  CHECK(built.where() == "code");
  CHECK(contains(built.problem(), "cluster.torch_threads = 100000 is above the maximum"));
}

TEST_CASE("a bad value from an override is blamed on the override, not on the file") {
  auto file = write_temp("blame.toml", "[train]\nmu = 2\n");
  auto e = expect_input_error([&] { cfg::load_file(file, {"train.mu=0"}); });
  CHECK(e.where() == "override 'train.mu=0'");
  auto big = expect_input_error([&] { cfg::load_file(file, {"cluster.port=70000"}); });
  CHECK(contains(big.where(), "override 'cluster.port=70000'"));
  std::filesystem::remove(file);
}

TEST_CASE("an override with a line break is refused, so it cannot smuggle in more keys") {
  for (const std::string assignment : {"train.mu=1\ntrain.beta=5", "tutor.model=\"a\"\nx = 1",
                                       "tutor.model=abc\ndef", "train.mu=1\r"}) {
    CAPTURE(assignment);
    cfg::config c;
    auto e = expect_input_error([&] { cfg::apply_override(c, assignment); });
    CHECK(contains(e.problem(), "line break"));
    CHECK(c == cfg::config{});
  }
}

TEST_CASE("knobs that are not built yet are refused unless they keep their default") {
  for (const std::string assignment : {"checkpoint.save_optimizer=false"}) {
    CAPTURE(assignment);
    const std::string key = assignment.substr(0, assignment.find('='));
    auto e = expect_input_error([&] { cfg::load_string("", "x.toml", {assignment}); });
    CHECK(e.where() == fmt::format("override '{}'", assignment));
    CHECK(e.problem() == fmt::format("{} is not built yet", key));
    CHECK(contains(e.hint(), "remove"));
  }
  // The default value is harmless, so configs that spell it out still load.
  CHECK_NOTHROW(cfg::load_string("[checkpoint]\nsave_optimizer = true\n", "defaults.toml"));

  auto in_file = expect_input_error(
    [] { cfg::load_string("[checkpoint]\nsave_optimizer = false\n", "ckpt.toml"); });
  CHECK(in_file.where() == "ckpt.toml:2:18");

  cfg::config c;
  c.checkpoint.save_optimizer = false;
  auto built = expect_input_error([&] { cfg::validate(c, "code"); });
  CHECK(built.problem() == "checkpoint.save_optimizer is not built yet");
}

TEST_CASE("the placement knobs load, and their values are checked") {
  CHECK_NOTHROW(cfg::load_string(
    "", "x.toml",
    {"tutor.replicas=2", "tutor.ranks=[4, 5]", "student.ranks=[6]", "cluster.host=\"10.0.0.1\"",
     "cluster.port=29500", "cluster.weight_bucket_mb=64", "cluster.collective_timeout_s=60"}));
  for (const std::string assignment :
       {"tutor.ranks=[1, 1]", "cluster.learner_ranks=[2, 2]", "cluster.port=70000",
        "cluster.weight_bucket_mb=0", "cluster.collective_timeout_s=-1", "tutor.ranks=[-1]"}) {
    CAPTURE(assignment);
    const std::string key = assignment.substr(0, assignment.find('='));
    auto e = expect_input_error([&] { cfg::load_string("", "x.toml", {assignment}); });
    CHECK(contains(e.what(), key));
  }
}
