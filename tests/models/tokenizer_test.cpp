// The tokenizer: byte-level BPE details on small synthetic tokenizers, and conformance with
// Hugging Face on real Qwen2.5, Qwen3 and Llama-3.1 tokenizer files (reference data from
// tests/reference/fetch.sh; those cases are skipped when it could not be fetched).
#include "models/text/bpe.hpp"
#include "models/text/pretokenizer.hpp"
#include "models/text/tokenizer.hpp"
#include "models/text/utf8.hpp"
#include "runtime/errors.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace fs = std::filesystem;
using json = nlohmann::json;
using pedagogy::input_error;
using namespace pedagogy::models;

namespace {

const fs::path reference_dir = PEDAGOGY_REFERENCE_DIR;

// A byte-level tokenizer.json: the 256 byte symbols, then `merges` (each adds its concatenation).
json synthetic(const std::vector<std::pair<std::string, std::string>>& merges,
               json added = json::array(), json normalizer = nullptr,
               json pre_tokenizer = {
                 {"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}) {
  byte_alphabet alphabet;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b)
    vocab[alphabet.spell(static_cast<uint8_t>(b))] = b;
  json merge_list = json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b))
      vocab[a + b] = static_cast<int>(vocab.size());
    merge_list.push_back(json::array({a, b}));
  }
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", normalizer},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_list}}}};
}

tokenizer make(const json& j) {
  return tokenizer::from_json(j.dump(), "synthetic.json");
}

std::string tokens_of(const tokenizer& t, const std::string& text) {
  std::string out;
  for (int32_t id : t.encode(text))
    out += (out.empty() ? "" : "|") + t.id_to_token(id);
  return out;
}

std::string load_error(const std::string& text) {
  try {
    tokenizer::from_json(text, "broken.json");
  } catch (const input_error& e) {
    CHECK_FALSE(e.hint().empty());
    return e.what();
  }
  FAIL("loading did not fail");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Reference data for one family, or nothing when the fetch step could not run.
std::optional<fs::path> reference(const std::string& family) {
  if (fs::exists(reference_dir / "UNAVAILABLE") || !fs::exists(reference_dir / family))
    return std::nullopt;
  return reference_dir / family;
}

std::string escaped(const std::string& text) {
  return json(text).dump();
}

void check_conformance(const std::string& family) {
  auto dir = reference(family);
  if (!dir) {
    std::cout << "SKIPPED: no reference data for " << family << " (see tests/reference/fetch.sh)\n";
    std::exit(77); // CTest's SKIP_RETURN_CODE for this binary
  }
  auto t = tokenizer::from_file(*dir / "tokenizer.json");
  std::ifstream in(*dir / "encodings.jsonl");
  std::string line;
  int cases = 0;
  int id_mismatches = 0;
  int decode_mismatches = 0;
  while (std::getline(in, line)) {
    json row = json::parse(line);
    const std::string text = row["text"];
    ++cases;
    auto ids = t.encode(text);
    if (ids != row["ids"].get<std::vector<int32_t>>() ||
        t.encode(text, /*add_special_tokens=*/true) !=
          row["ids_with_special"].get<std::vector<int32_t>>()) {
      if (++id_mismatches <= 5)
        MESSAGE(family << " ids differ for " << escaped(text) << "\n  expected "
                       << row["ids"].dump() << "\n  got      " << json(ids).dump());
    }
    const auto expected_ids = row["ids"].get<std::vector<int32_t>>();
    if (t.decode(expected_ids) != row["decoded"].get<std::string>() ||
        t.decode(expected_ids, /*skip_special_tokens=*/true) !=
          row["decoded_skip"].get<std::string>()) {
      if (++decode_mismatches <= 5)
        MESSAGE(family << " decode differs for " << escaped(text));
    }
  }
  CHECK(cases >= 1000);
  CHECK(id_mismatches == 0);
  CHECK(decode_mismatches == 0);
}

} // namespace

TEST_CASE("the byte alphabet spells every byte and reads it back") {
  byte_alphabet alphabet;
  std::string all;
  std::string spelled;
  for (int b = 0; b < 256; ++b) {
    all += static_cast<char>(b);
    spelled += alphabet.spell(static_cast<uint8_t>(b));
  }
  CHECK(alphabet.spell(' ') == "\xC4\xA0"); // "Ġ"
  CHECK(alphabet.spell('A') == "A");
  std::string back;
  CHECK(alphabet.unspell(spelled, back));
  CHECK(back == all);
  CHECK_FALSE(alphabet.unspell("数", back));
}

TEST_CASE("BPE merges the lowest rank first, and the leftmost pair among equals") {
  // Ranks: "b c" before "a b": "abc" must become a|bc, not ab|c.
  auto t = make(synthetic({{"b", "c"}, {"a", "b"}}));
  CHECK(tokens_of(t, "abc") == "a|bc");
  // The same pair twice in a row merges left to right: "aaa" -> aa|a.
  auto u = make(synthetic({{"a", "a"}}));
  CHECK(tokens_of(u, "aaa") == "aa|a");
  CHECK(tokens_of(u, "aaaa") == "aa|aa");
  // Merges chain into longer symbols.
  auto v = make(synthetic({{"a", "b"}, {"ab", "c"}, {"abc", "d"}}));
  CHECK(tokens_of(v, "abcd") == "abcd");
}

TEST_CASE("ignore_merges takes a pre-token found whole in the vocabulary") {
  json j = synthetic({{"a", "b"}});
  j["model"]["vocab"]["abc"] = 400; // reachable only as a whole word
  j["model"]["ignore_merges"] = true;
  CHECK(tokens_of(make(j), "abc") == "abc");
  j["model"]["ignore_merges"] = false;
  CHECK(tokens_of(make(j), "abc") == "ab|c");
}

TEST_CASE("added tokens are cut out first, longest match, honouring their flags") {
  auto token = [](int id, const std::string& content, bool lstrip = false, bool rstrip = false,
                  bool single_word = false, bool normalized = false) {
    return json{{"id", id},         {"content", content}, {"single_word", single_word},
                {"lstrip", lstrip}, {"rstrip", rstrip},   {"normalized", normalized},
                {"special", true}};
  };
  json added = json::array({token(300, "<s>"), token(301, "<s>x"), token(302, "[L]", true),
                            token(303, "[R]", false, true), token(304, "cat", false, false, true),
                            token(305, "\u00E9!", false, false, false, true)});
  auto t = make(synthetic({}, added, {{"type", "NFC"}}));
  CHECK(t.encode("<s>x") == std::vector<int32_t>{301}); // the longest token wins
  CHECK(tokens_of(t, "a <s>") == "a|\xC4\xA0|<s>");     // no lstrip: the space stays its own token
  // lstrip swallows the spaces on its left, rstrip those on its right.
  CHECK(tokens_of(t, "a  [L]") == "a|[L]");
  CHECK(tokens_of(t, "[R]  b") == "[R]|b");
  // single_word: only outside words.
  CHECK(t.encode("a cat")[2] == 304);
  const auto inside_a_word = t.encode("concatenate");
  CHECK(std::find(inside_a_word.begin(), inside_a_word.end(), 304) == inside_a_word.end());
  // A normalized token matches after NFC: e + combining acute composes to é.
  CHECK(t.encode("e\u0301!") == std::vector<int32_t>{305});
  // Special tokens can be skipped when decoding.
  CHECK(t.decode(t.encode("hi<s>"), /*skip_special_tokens=*/true) == "hi");
  CHECK(t.decode(t.encode("hi<s>")) == "hi<s>");
}

TEST_CASE("NFC composes decomposed characters before BPE") {
  auto plain = make(synthetic({}));
  auto nfc = make(synthetic({}, json::array(), {{"type", "NFC"}}));
  const std::string decomposed = "e\u0301";
  CHECK(plain.decode(plain.encode(decomposed)) == decomposed);
  CHECK(nfc.decode(nfc.encode(decomposed)) == "\u00E9");
}

TEST_CASE("whitespace means Unicode White_Space, as in the Rust library") {
  CHECK(is_unicode_whitespace(U'\u0085'));       // NEL is whitespace
  CHECK(is_unicode_whitespace(U'\u3000'));       // ideographic space
  CHECK_FALSE(is_unicode_whitespace(U'\uFEFF')); // BOM is not
  CHECK_FALSE(is_unicode_whitespace(U'\u180E')); // nor the Mongolian vowel separator
  regex_splitter split(R"(\s+|\S+)", "test");
  std::vector<std::pair<size_t, size_t>> pieces;
  split.split("a\u0085b\u180Ec", pieces);
  CHECK(pieces.size() == 3); // "a", NEL, "b\u180Ec"
  CHECK(with_unicode_whitespace(R"([^\s\p{L}])") == "[^\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-"
                                                    "\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
                                                    "\\x{3000}\\p{L}]");
}

TEST_CASE("invalid UTF-8 is refused on the way in and replaced on the way out") {
  auto t = make(synthetic({}));
  CHECK_THROWS_AS(t.encode("ok\xFF"), input_error);
  CHECK(find_invalid_utf8("ab\xE2\x82") == 2);
  CHECK(find_invalid_utf8("caf\xC3\xA9") == std::string::npos);
  // Maximal subparts: a truncated 4-byte sequence is one U+FFFD, an overlong form one per byte.
  CHECK(utf8_lossy("a\xF0\x9F\x98") == "a\xEF\xBF\xBD");
  CHECK(utf8_lossy("\xC0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(utf8_lossy("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"); // a surrogate
  // Decoding the bytes of half an emoji gives U+FFFD, not broken text.
  auto ids = t.encode("\U0001F600");
  CHECK(ids.size() == 4);
  ids.pop_back();
  CHECK(t.decode(ids) == "\xEF\xBF\xBD");
}

TEST_CASE("a broken tokenizer.json gets a clear error") {
  CHECK(contains(load_error("{\"model\": "), "not valid JSON"));
  CHECK(contains(load_error("[]"), "has no \"model\" section"));
  json j = synthetic({});
  j["normalizer"] = {{"type", "Lowercase"}};
  CHECK(contains(load_error(j.dump()), "unsupported normalizer"));
  j = synthetic({});
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  CHECK(contains(load_error(j.dump()), "unsupported pre-tokenizer"));
  j = synthetic({});
  j["model"]["type"] = "WordPiece";
  CHECK(contains(load_error(j.dump()), "unsupported model"));
  j = synthetic({});
  j["model"]["merges"] = json::array({"a zz"});
  CHECK(contains(load_error(j.dump()), "missing from the vocab"));
  j = synthetic({});
  j["model"]["vocab"].erase("A");
  CHECK(contains(load_error(j.dump()), "byte 0x41"));
  j = synthetic({});
  j["pre_tokenizer"] = {
    {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  CHECK(contains(load_error(j.dump()), "does not compile"));
  CHECK_THROWS_AS(make(synthetic({})).id_to_token(100000), input_error);
}

TEST_CASE("token ids that are not integers below the vocabulary bound are refused by token") {
  auto with_added_id = [](const json& id) {
    return synthetic({}, json::array({{{"id", id}, {"content", "<|x|>"}, {"special", true}}}));
  };
  // 2^40 and 2^32 + 104 would wrap to 0 and 104 ('h') in an int32.
  for (const json& id : {json(int64_t{1} << 40), json(4294967400), json(-1), json(1.5)}) {
    CAPTURE(id.dump());
    const std::string error = load_error(with_added_id(id).dump());
    CHECK(contains(error, "broken.json"));
    CHECK(contains(error, "added token '<|x|>'"));
    CHECK(contains(error, id.dump()));
  }
  json j = synthetic({});
  j["model"]["vocab"]["A"] = int64_t{1} << 40;
  CHECK(contains(load_error(j.dump()), "vocabulary token 'A' has the id 1099511627776"));
  j["model"]["vocab"]["A"] = 65.5;
  CHECK(contains(load_error(j.dump()), "vocabulary token 'A' has the id 65.5"));
  CHECK(make(with_added_id(256)).token_to_id("<|x|>") == 256);
}

TEST_CASE("Qwen2.5 ids and decoding equal Hugging Face's on the reference corpus") {
  check_conformance("qwen2_5");
}

TEST_CASE("Qwen3 ids and decoding equal Hugging Face's on the reference corpus") {
  check_conformance("qwen3");
}

TEST_CASE("Llama-3.1 ids, BOS and decoding equal Hugging Face's on the reference corpus") {
  check_conformance("llama3_1");
}

TEST_CASE("Llama-3.2 ids, BOS and decoding equal Hugging Face's on the reference corpus") {
  check_conformance("llama3_2");
}
