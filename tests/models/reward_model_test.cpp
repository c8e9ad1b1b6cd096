// A decoder with a sequence-classification head (the pedagogical reward model's shape): its
// config.json as transformers writes it, saving and loading, last-token pooling that padding and
// batching do not change, truncation to the last tokens, and the errors for the wrong model kind.
#include "models/ped/reward_model.hpp"
#include "models/tensor/init_model.hpp"
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/torch_doctest.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using namespace pedagogy::models;
using pedagogy::input_error;

namespace {

struct temp_dir : pedagogy::testing::temp_dir {
  explicit temp_dir(const std::string& name)
    : pedagogy::testing::temp_dir("rm_" + name, start::absent) {}
};

fs::path write_model(const fs::path& dir, int64_t labels, uint64_t seed = 5) {
  init_options o;
  o.family = model_family::qwen2;
  o.preset = "tiny";
  o.seed = seed;
  o.out = dir;
  o.num_labels = labels;
  init_model(o);
  return dir;
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

std::vector<std::vector<chat_message>> conversations() {
  return {
    {{"system", "Judge the teacher."}, {"user", "Problem: 6 x 7"}, {"assistant", "Try 6 x 7."}},
    {{"user", "Problem: 2 + 2"}, {"assistant", "What is 2 + 1 first?"}},
    {{"system", "Judge the teacher."},
     {"user", "Problem: a long one, with many more words in it than the others"},
     {"assistant", "Where would you start? Say it in your own words, then try a small case."}},
  };
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const input_error& e) {
    return std::string(e.where()) + " | " + e.problem() + " | " + e.hint();
  }
  return "no error";
}

} // namespace

TEST_CASE("a classifier's config.json and weights are transformers' ForSequenceClassification") {
  temp_dir dir("layout");
  write_model(dir.path, 1);
  const auto j = read_json(dir.path / "config.json");
  CHECK(j["architectures"] == nlohmann::json::array({"Qwen2ForSequenceClassification"}));
  CHECK(j["id2label"].size() == 1);
  CHECK(j["label2id"]["LABEL_0"] == 0);
  const auto weights = checkpoint_reader::open(dir.path);
  const auto names = weights.names();
  CHECK(std::count(names.begin(), names.end(), "score.weight") == 1);
  CHECK(std::count(names.begin(), names.end(), "lm_head.weight") == 0);
  auto model = transformer::load(dir.path, at::kCPU, at::kFloat);
  CHECK(model.is_classifier());
  CHECK(model.config().num_labels == 1);
  CHECK(model.config().to_json() == model_config::load(dir.path).to_json());
  // A causal LM of the same family reads back as one, with no score head.
  temp_dir lm("layout_lm");
  write_model(lm.path, 0);
  CHECK(read_json(lm.path / "config.json")["architectures"] ==
        nlohmann::json::array({"Qwen2ForCausalLM"}));
  CHECK_FALSE(transformer::load(lm.path, at::kCPU, at::kFloat).is_classifier());
  // transformers' default for a classifier without id2label is 2 labels.
  auto text = read_json(dir.path / "config.json");
  text.erase("id2label");
  text.erase("label2id");
  CHECK(model_config::parse(text.dump(), "x").num_labels == 2);
  text["num_labels"] = 3;
  CHECK(model_config::parse(text.dump(), "x").num_labels == 3);
}

TEST_CASE("the score is the head's raw logit at each conversation's last token") {
  temp_dir dir("score");
  write_model(dir.path, 1);
  const auto rm = reward_model::load(dir.path, at::kCPU, 4096);
  const auto convs = conversations();
  const auto batched = rm.score(convs);
  REQUIRE(batched.size() == convs.size());
  for (size_t i = 0; i < convs.size(); ++i) {
    CAPTURE(i);
    // By hand: the unpadded forward, the last position, the head.
    const auto ids = rm.tokenize(convs[i]);
    auto t = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::kLong).view({1, -1});
    at::NoGradGuard no_grad;
    const auto hidden = rm.model().hidden_states(t, {}, {}, nullptr);
    const double expected = rm.model().score(hidden[0][-1]).item<double>();
    CHECK(batched[i].value == doctest::Approx(expected).epsilon(1e-5));
    CHECK(batched[i].tokens == static_cast<int64_t>(ids.size()));
    CHECK_FALSE(batched[i].truncated);
    // One at a time (no padding) gives the same score as in a padded batch.
    CHECK(rm.score({convs[i]})[0].value == doctest::Approx(batched[i].value).epsilon(1e-5));
  }
  // Batches of one row each (a tiny token budget) change nothing either.
  const auto single = rm.score(convs, /*batch_tokens=*/1);
  for (size_t i = 0; i < convs.size(); ++i)
    CHECK(single[i].value == doctest::Approx(batched[i].value).epsilon(1e-5));
  // Different conversations get different scores (the head is not constant).
  CHECK(batched[0].value != doctest::Approx(batched[1].value).epsilon(1e-6));
}

TEST_CASE("a conversation longer than max_length is scored on its last tokens") {
  temp_dir dir("truncate");
  write_model(dir.path, 1);
  const auto full = reward_model::load(dir.path, at::kCPU, 4096);
  const auto convs = conversations();
  const auto ids = full.tokenize(convs[2]);
  const int64_t keep = 20;
  REQUIRE(static_cast<int64_t>(ids.size()) > keep);
  const auto cut = reward_model::load(dir.path, at::kCPU, keep);
  const auto scored = cut.score({convs[2]});
  CHECK(scored[0].truncated);
  CHECK(scored[0].tokens == static_cast<int64_t>(ids.size()));
  const std::vector<int32_t> tail(ids.end() - keep, ids.end());
  CHECK(scored[0].value == doctest::Approx(full.score_ids({tail})[0].value).epsilon(1e-6));
  CHECK(scored[0].value != doctest::Approx(full.score({convs[2]})[0].value).epsilon(1e-6));
}

TEST_CASE("the wrong kind of model is refused by name, a reward model and a generator alike") {
  temp_dir lm("kind_lm"), head("kind_head"), two("kind_two");
  write_model(lm.path, 0);
  write_model(head.path, 1);
  write_model(two.path, 2);
  const auto as_rm = error_of([&] { reward_model::load(lm.path, at::kCPU, 64); });
  CHECK(as_rm.find((lm.path / "config.json").string()) == 0);
  CHECK(as_rm.find("is a causal LM") != std::string::npos);
  CHECK(as_rm.find("init-model --head classification") != std::string::npos);
  const auto labels = error_of([&] { reward_model::load(two.path, at::kCPU, 64); });
  CHECK(labels.find("2 labels") != std::string::npos);
  const auto as_lm = error_of(
    [&] { transformer::load(head.path, at::kCPU, at::kFloat).require_causal_lm(head.path); });
  CHECK(as_lm.find("sequence-classification model") != std::string::npos);
  CHECK(as_lm.find("eval.reward_model") != std::string::npos);
  auto unknown = read_json(lm.path / "config.json");
  unknown["architectures"] = {"Qwen2ForTokenClassification"};
  CHECK(error_of([&] {
          model_config::parse(unknown.dump(), "c.json");
        }).find("architecture 'Qwen2ForTokenClassification' is not supported") !=
        std::string::npos);
}
