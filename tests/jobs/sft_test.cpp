// Supervised fine-tuning: the assistant-only mask token by token against the chat templates'
// prefixes (ChatML, Llama-3.1, Qwen3), packing and length buckets keep every trained token once
// and examples apart, a tiny model learns a generated chat set, a resumed run ends with the
// weights of one that never stopped, and every kind of bad row is refused naming its line.
#include "config/config.hpp"
#include "jobs/sft_job.hpp"
#include "models/sft/sft.hpp"
#include "models/tensor/init_model.hpp"
#include "models/weights/safetensors.hpp"
#include "run/checkpoints.hpp"
#include "runtime/errors.hpp"
#include "runtime/seeds.hpp"
#include "runtime/signals.hpp"
#include "tests/support/torch_doctest.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

using namespace pedagogy;
using namespace pedagogy::models;
namespace fs = std::filesystem;

namespace {

tokenizer byte_tokenizer(model_family family) {
  return tokenizer::from_json(byte_level_tokenizer_json(family), "byte-level");
}

// A short seeded word of lowercase letters.
std::string word(uint64_t seed, uint64_t i) {
  std::string w;
  const auto length = 3 + stream_value(seed, 100 * i) % 4;
  for (uint64_t k = 0; k < length; ++k)
    w += static_cast<char>('a' + stream_value(seed, 100 * i + k + 1) % 26);
  return w;
}

// The generated chat set: the user asks for a word, the assistant answers in a fixed pattern.
std::vector<chat_message> chat(uint64_t i) {
  const auto w = word(7, i);
  return {{"user", "Say " + w + "."}, {"assistant", "Sure: " + w + ". Done."}};
}

std::string chat_line(uint64_t i) {
  std::string out = R"({"messages": [)";
  const auto m = chat(i);
  for (size_t k = 0; k < m.size(); ++k)
    out += (k ? ", " : "") + std::string(R"({"role": ")") + m[k].role + R"(", "content": ")" +
           m[k].content + R"("})";
  return out + "]}";
}

// Checks the mask of `messages` against render(messages[:i], true) and render(messages[:i+1]):
// the tokens of each assistant reply (its content and end-of-turn) are trained, nothing else is.
// With `turn_rendering` = false (Qwen3, which writes the last assistant turn with a think block
// and earlier ones without), the reply is taken from the whole conversation after the prompt.
void check_mask(const std::vector<chat_message>& messages, const tokenizer& tok,
                const chat_format& format, bool turn_rendering = true) {
  const auto example = tokenize_chat(messages, tok, format, /*assistant_only=*/true);
  REQUIRE(example.tokens.size() == example.trained.size());
  // Ordinary text tokenizes the same in pieces as in one go.
  CHECK(example.tokens == tok.encode(format.render(messages, false)));
  const std::string eot = format.end_of_turn();
  std::vector<uint8_t> expected(example.tokens.size(), 0);
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant")
      continue;
    CAPTURE(i);
    const std::vector<chat_message> before(messages.begin(), messages.begin() + i);
    const std::vector<chat_message> through(messages.begin(), messages.begin() + i + 1);
    const auto prompt_text = format.render(before, true);
    const auto turn_text =
      turn_rendering ? format.render(through, false) : format.render(messages, false);
    REQUIRE(turn_text.compare(0, prompt_text.size(), prompt_text) == 0);
    const auto prompt = tok.encode(prompt_text);
    // The difference, up to its end-of-turn token (ChatML's newline after it is template glue).
    const auto diff = turn_text.substr(prompt_text.size());
    const auto reply_text = diff.substr(0, diff.find(eot) + eot.size());
    CHECK(reply_text == python_strip(messages[i].content) + eot);
    const auto reply = tok.encode(reply_text);
    REQUIRE(prompt.size() + reply.size() <= example.tokens.size());
    CHECK(std::equal(prompt.begin(), prompt.end(), example.tokens.begin()));
    CHECK(std::equal(reply.begin(), reply.end(),
                     example.tokens.begin() + static_cast<std::ptrdiff_t>(prompt.size())));
    for (size_t t = prompt.size(); t < prompt.size() + reply.size(); ++t)
      expected[t] = 1;
  }
  for (size_t t = 0; t < expected.size(); ++t) {
    CAPTURE(t);
    CAPTURE(tok.decode({example.tokens[t]}));
    CHECK(example.trained[t] == expected[t]);
  }
}

const std::vector<chat_message> dialog = {
  {"system", "You are a patient tutor."},
  {"user", "What is 6 x 7?"},
  {"assistant", "What do you get when you add 6 seven times?"},
  {"user", "42!"},
  {"assistant", "Yes: 42. Well done."},
  {"user", "Thanks."},
};

} // namespace

TEST_CASE("the assistant-only mask is each reply's content and end-of-turn: ChatML (qwen2)") {
  const auto tok = byte_tokenizer(model_family::qwen2);
  const auto format = chat_format::chatml("You are a helpful assistant.");
  check_mask(dialog, tok, format);
  check_mask({dialog.begin() + 1, dialog.end()}, tok, format); // the default system prompt
  check_mask(chat(3), tok, format);
}

TEST_CASE("the assistant-only mask is each reply's content and end-of-turn: Llama-3.1") {
  const auto tok = byte_tokenizer(model_family::llama);
  const auto format = chat_format::llama31();
  check_mask(dialog, tok, format);
  auto padded = dialog;
  padded[2].content = "  Spaces around the reply are stripped by the template.\n";
  check_mask(padded, tok, format);
  check_mask(chat(3), tok, format);
}

TEST_CASE("the assistant-only mask is each reply's content and end-of-turn: Qwen3") {
  check_mask(dialog, byte_tokenizer(model_family::qwen3), chat_format::qwen3(),
             /*turn_rendering=*/false);
}

TEST_CASE("loss on all tokens trains every token but the first") {
  const auto tok = byte_tokenizer(model_family::qwen2);
  const auto e = tokenize_chat(dialog, tok, chat_format::chatml(""), /*assistant_only=*/false);
  CHECK(e.trained[0] == 0);
  CHECK(e.trained_tokens() == static_cast<int64_t>(e.tokens.size()) - 1);
}

TEST_CASE("packing and length buckets keep every trained token once and examples apart") {
  const auto tok = byte_tokenizer(model_family::qwen2);
  const auto format = chat_format::chatml("");
  std::vector<sft_example> examples;
  for (uint64_t i = 0; i < 23; ++i) {
    auto m = chat(i);
    m[1].content += std::string(i % 5 * 7, 'x'); // varied lengths
    examples.push_back(tokenize_chat(m, tok, format, true));
  }
  int64_t all_trained = 0;
  for (const auto& e : examples)
    all_trained += e.trained_tokens();
  const auto model =
    transformer::random(preset_config(model_family::qwen2, "tiny", 320), 3, at::kCPU, at::kFloat);
  at::NoGradGuard no_grad;
  // Each example's NLL alone: the reference for every layout.
  std::vector<double> alone;
  for (size_t i = 0; i < examples.size(); ++i)
    alone.push_back(micro_batch_nll(model, examples, {{{i}}}, false).sum.item<double>());

  for (const bool pack : {true, false}) {
    CAPTURE(pack);
    sft_plan_options o;
    o.pack = pack;
    o.max_length = 120;
    o.micro_batch_size = 2;
    o.gradient_accumulation = 3;
    o.seed = 11;
    const auto steps = plan_steps(examples, o, 2);
    std::map<int64_t, std::multiset<size_t>> seen; // per epoch
    for (const auto& step : steps)
      for (const auto& m : step.micro_batches) {
        CHECK(m.rows.size() <= 2);
        double expected = 0;
        int64_t trained = 0;
        for (const auto& row : m.rows) {
          int64_t length = 0;
          for (size_t i : row) {
            seen[step.epoch].insert(i);
            length += static_cast<int64_t>(examples[i].tokens.size());
            expected += alone[i];
            trained += examples[i].trained_tokens();
          }
          CHECK(length <= o.max_length);
          if (!pack)
            CHECK(row.size() == 1);
        }
        // Packed or padded, an example's tokens see only its own: the sum is each one's alone.
        const auto nll = micro_batch_nll(model, examples, m, pack);
        CHECK(nll.tokens == trained);
        CHECK(nll.sum.item<double>() == doctest::Approx(expected).epsilon(1e-5));
      }
    REQUIRE(seen.size() == 2);
    for (const auto& [epoch, indices] : seen) {
      CAPTURE(epoch);
      CHECK(indices.size() == examples.size());
      CHECK(std::set<size_t>(indices.begin(), indices.end()).size() == examples.size());
    }
    int64_t planned = 0;
    for (const auto& step : steps)
      if (step.epoch == 0)
        for (const auto& m : step.micro_batches)
          for (const auto& row : m.rows)
            for (size_t i : row)
              planned += examples[i].trained_tokens();
    CHECK(planned == all_trained);
    if (pack)
      CHECK(steps.front().micro_batches.front().rows.front().size() > 1); // it did pack
  }
  // Buckets hold examples of similar length: sorted, then cut, so their length ranges do not
  // overlap.
  sft_plan_options b;
  b.pack = false;
  b.micro_batch_size = 4;
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const auto& m : plan_epoch(examples, b, 0)) {
    size_t shortest = 1 << 20, longest = 0;
    for (const auto& row : m.rows) {
      shortest = std::min(shortest, examples[row[0]].tokens.size());
      longest = std::max(longest, examples[row[0]].tokens.size());
    }
    ranges.emplace_back(shortest, longest);
  }
  for (const auto& [lo_a, hi_a] : ranges)
    for (const auto& [lo_b, hi_b] : ranges)
      CHECK((hi_a <= lo_b || hi_b <= lo_a || (lo_a == lo_b && hi_a == hi_b)));
}

namespace {

// A run folder with a tiny qwen2 tutor and the generated chat set, under the temp folder.
struct sft_run {
  fs::path dir;
  config::config cfg;

  explicit sft_run(const std::string& name) : dir(fs::temp_directory_path() / name) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    init_options io;
    io.family = model_family::qwen2;
    io.preset = "tiny";
    io.seed = 3;
    io.out = dir / "tutor";
    init_model(io);
    std::ofstream out(dir / "chat.jsonl");
    for (uint64_t i = 0; i < 96; ++i)
      out << chat_line(i) << '\n';
    out.close();
    cfg = config::load_file(fs::path(PEDAGOGY_SOURCE_DIR) / "config/tiny.toml", {});
    cfg.tutor.model = (dir / "tutor").string();
    cfg.sft.train = (dir / "chat.jsonl").string();
    cfg.sft.val_fraction = 0.125;
    cfg.sft.max_length = 256;
    cfg.sft.micro_batch_size = 2;
    cfg.sft.gradient_accumulation = 2;
    cfg.sft.learning_rate = 1e-2;
    cfg.sft.epochs = 3;
    cfg.sft.warmup_ratio = 0.1;
    cfg.sft.val_every_steps = 4;
    cfg.train.seed = 5;
    cfg.cluster.torch_threads = 1;
    cfg.logging.run_dir = (dir / "run").string();
    cfg.logging.level = "warn";
    cfg.checkpoint.every_steps = 0;
    cfg.checkpoint.keep_last = 0;
  }
  ~sft_run() {
    fs::remove_all(dir);
  }

  actors::sft_result run(const actors::sft_run_options& o = {}) {
    return actors::run_sft(cfg, config::to_toml(cfg), o);
  }
};

} // namespace

TEST_CASE("SFT on a tiny model lowers the validation loss of a generated chat set") {
  sft_run run("pedagogy_sft_learns");
  const auto r = run.run();
  REQUIRE(r.exit_code == 0);
  MESSAGE("validation loss " << r.first_val_loss << " -> " << r.last_val_loss << " in "
                             << r.total_steps << " steps");
  CHECK(r.last_val_loss < 0.5 * r.first_val_loss);
  const auto last = actors::checkpoint_dir(run.dir / "run/checkpoints", r.total_steps);
  CHECK(r.checkpoint == last);
  CHECK(fs::exists(last / "optimizer.safetensors"));
  CHECK(fs::exists(last / "tokenizer.json"));
  CHECK(actors::checkpoint_problem(last).empty());
  // Metrics: one line per step and one per validation, the first before any update.
  std::ifstream in(run.dir / "run/sft_metrics.jsonl");
  int steps = 0, validations = 0;
  for (std::string line; std::getline(in, line);)
    (line.find("val_loss") != std::string::npos ? validations : steps) += 1;
  CHECK(steps == r.total_steps);
  // Before any update, every val_every_steps, and at the end.
  CHECK(validations == 1 + r.total_steps / 4 + (r.total_steps % 4 != 0));
  // A second run on the same folder is refused unless it resumes or starts over.
  CHECK_THROWS_AS(run.run(), input_error);
}

TEST_CASE("length buckets learn as well") {
  sft_run run("pedagogy_sft_buckets");
  run.cfg.sft.pack = false;
  run.cfg.sft.micro_batch_size = 8;
  const auto r = run.run();
  REQUIRE(r.exit_code == 0);
  MESSAGE("validation loss " << r.first_val_loss << " -> " << r.last_val_loss);
  CHECK(r.last_val_loss < 0.5 * r.first_val_loss);
}

TEST_CASE("a run stopped by a signal and resumed ends with the weights of one that never stopped") {
  sft_run straight("pedagogy_sft_straight");
  straight.cfg.checkpoint.every_steps = 4;
  const auto whole = straight.run();
  REQUIRE(whole.exit_code == 0);
  REQUIRE(whole.total_steps > 6);

  sft_run stopped("pedagogy_sft_stopped");
  stopped.cfg.checkpoint.every_steps = 4;
  actors::sft_run_options o;
  o.on_step = [](const actors::sft_step_info& info) {
    if (info.step == 6)
      signals::request_stop(SIGINT);
  };
  const auto first = stopped.run(o);
  signals::clear_stop_request();
  CHECK(first.exit_code == 130);
  CHECK(first.steps_done == 6);
  CHECK(fs::exists(stopped.dir / "run/checkpoints/step-000006")); // the steps done are kept
  actors::sft_run_options resume;
  resume.resume = true;
  const auto second = stopped.run(resume);
  REQUIRE(second.exit_code == 0);
  CHECK(second.start_step == 6);

  const auto end_a = actors::checkpoint_dir(straight.dir / "run/checkpoints", whole.total_steps);
  const auto end_b = actors::checkpoint_dir(stopped.dir / "run/checkpoints", whole.total_steps);
  const auto a = checkpoint_reader::open(end_a);
  const auto b = checkpoint_reader::open(end_b);
  const auto start = checkpoint_reader::open(straight.dir / "tutor");
  REQUIRE(a.names() == b.names());
  bool moved = false;
  for (const auto& name : a.names()) {
    CAPTURE(name);
    CHECK(at::equal(a.tensor(name), b.tensor(name)));
    moved = moved || !at::equal(a.tensor(name), start.tensor(name));
  }
  CHECK(moved);
  const auto oa = safetensors_file::open(end_a / "optimizer.safetensors");
  const auto ob = safetensors_file::open(end_b / "optimizer.safetensors");
  for (const auto& entry : oa.header().tensors)
    CHECK(at::equal(oa.tensor(entry.name), ob.tensor(entry.name)));
  // The metrics of both runs agree line for line (timings aside).
  auto read = [](const fs::path& path) {
    std::vector<nlohmann::json> lines;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      for (const char* timing : {"step_s", "tokens_per_s", "val_s"})
        j.erase(timing);
      lines.push_back(j);
    }
    return lines;
  };
  const auto ma = read(straight.dir / "run/sft_metrics.jsonl");
  CHECK(ma.size() > static_cast<size_t>(whole.total_steps));
  CHECK(ma == read(stopped.dir / "run/sft_metrics.jsonl"));
}

namespace {

// The input_error of reading one bad file.
input_error bad_file_error(const std::string& name, const std::string& content,
                           int64_t max_length = 4096) {
  const fs::path dir = fs::temp_directory_path() / "pedagogy_sft_bad_rows";
  fs::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path) << content;
  chat_jsonl_options o;
  o.max_length = max_length;
  try {
    read_chat_jsonl(path, byte_tokenizer(model_family::qwen2), chat_format::chatml(""), o);
  } catch (const input_error& e) {
    fs::remove_all(dir);
    return e;
  }
  fs::remove_all(dir);
  FAIL("no error for " << name);
  return input_error("", "");
}

} // namespace

TEST_CASE("bad chat rows are refused naming the file, the line and the field") {
  const std::string good = chat_line(1) + "\n";
  struct bad_case {
    std::string name, row, problem;
  };
  const std::vector<bad_case> cases = {
    {"no_assistant.jsonl", R"({"messages": [{"role": "user", "content": "hi"}]})",
     "messages: no assistant turn"},
    {"unknown_role.jsonl",
     R"({"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]})",
     "messages[0].role is 'tool'"},
    {"content_number.jsonl",
     R"({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "y"}]})",
     "messages[0].content is a number, not a string"},
    {"content_null.jsonl",
     R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": null}]})",
     "messages[1].content is null"},
    {"malformed.jsonl", R"({"messages": [{"role": "user", "content": "x"})", "not valid JSON"},
    {"wrong_field.jsonl", R"({"conversation": []})",
     "no field 'messages' (the row has: conversation)"},
    {"not_object.jsonl", R"([1, 2])", "the line is an array, not a JSON object"},
    {"empty_list.jsonl", R"({"messages": []})", "field 'messages' is an empty list"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    // Line 3: after a good line and a blank one, which count for the number.
    const auto e = bad_file_error(c.name, good + "\n" + c.row + "\n" + good);
    CHECK(e.where().ends_with(c.name + ":3"));
    CHECK(e.problem().find(c.problem) != std::string::npos);
    CHECK(!e.hint().empty());
    MESSAGE(describe(e));
  }
  const auto long_one = bad_file_error("long.jsonl", good + good, 40);
  CHECK(long_one.where().ends_with("long.jsonl:1"));
  CHECK(long_one.problem().find("more than sft.max_length = 40") != std::string::npos);
  CHECK(long_one.hint().find("raise sft.max_length to at least") != std::string::npos);
  const auto empty = bad_file_error("empty.jsonl", "\n\n");
  CHECK(empty.where().ends_with("empty.jsonl"));
  CHECK(empty.problem().find("no examples") != std::string::npos);
}
