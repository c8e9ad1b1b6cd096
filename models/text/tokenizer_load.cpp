// Reading tokenizer.json (see tokenizer.hpp): the model, the normalizer, the pre-tokenizer, the
// post-processor and the added tokens, each refused by name when it is not byte-level BPE.
#include "models/text/tokenizer_impl.hpp"
#include "models/text/utf8.hpp"
#include "models/weights/model_config.hpp"
#include "models/weights/model_files.hpp"
#include "runtime/errors.hpp"
#include "runtime/json_excerpt.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

namespace pedagogy::models {

namespace {

using json = nlohmann::json;

// A string field that may also be absent or null.
std::string text_of(const json& node, const char* key) {
  auto it = node.find(key);
  return it == node.end() || it->is_null() ? std::string{} : it->get<std::string>();
}

// A token id as tokenizer.json writes it. get<int32_t>() would wrap 2^40 to 0 and cut 1.5 to 1,
// so a corrupted id would silently stand for another token: only integers below max_vocab_size
// are ids. The error names the token: its `kind` ("added token") and `name`.
int32_t token_id(const json& id, const std::string& where, const char* kind,
                 const std::string& name) {
  const bool in_range =
    id.is_number_unsigned()  ? id.get<uint64_t>() < static_cast<uint64_t>(max_vocab_size)
    : id.is_number_integer() ? id.get<int64_t>() >= 0 && id.get<int64_t>() < max_vocab_size
                             : false;
  if (!in_range)
    throw input_error(where,
                      fmt::format("{} '{}' has the id {}, which is not an integer in [0, {})", kind,
                                  name, json_excerpt(id), max_vocab_size),
                      "the tokenizer.json is corrupted: copy it again from the model's source");
  return static_cast<int32_t>(id.get<int64_t>());
}

} // namespace

using tokenizer_detail::normalize;

void tokenizer::impl::load_normalizer(const json& node) {
  if (node.is_null())
    return;
  const std::string type = text_of(node, "type");
  if (type == "Sequence") {
    for (const auto& child : node.at("normalizers"))
      load_normalizer(child);
  } else if (type == "NFC") {
    normal_forms.push_back(normal_form::nfc);
  } else if (type == "NFD") {
    normal_forms.push_back(normal_form::nfd);
  } else if (type == "NFKC") {
    normal_forms.push_back(normal_form::nfkc);
  } else if (type == "NFKD") {
    normal_forms.push_back(normal_form::nfkd);
  } else {
    unsupported("normalizer", node);
  }
}

void tokenizer::impl::load_pre_tokenizer(const json& node) {
  if (node.is_null())
    return;
  const std::string type = text_of(node, "type");
  if (type == "Sequence") {
    for (const auto& child : node.at("pretokenizers"))
      load_pre_tokenizer(child);
  } else if (type == "Split") {
    if (text_of(node, "behavior") != "Isolated" || node.value("invert", false))
      unsupported("Split pre-tokenizer behaviour", node);
    const json& pattern = node.at("pattern");
    std::string regex;
    if (pattern.contains("Regex"))
      regex = pattern.at("Regex").get<std::string>();
    else if (pattern.contains("String"))
      regex = "\\Q" + pattern.at("String").get<std::string>() + "\\E";
    else
      unsupported("Split pattern", pattern);
    pre_steps.push_back({std::make_unique<regex_splitter>(regex, where), false});
  } else if (type == "ByteLevel") {
    pre_step step;
    step.add_prefix_space = node.value("add_prefix_space", false);
    if (node.value("use_regex", true))
      step.splitter = std::make_unique<regex_splitter>(gpt2_pattern, where);
    pre_steps.push_back(std::move(step));
  } else {
    unsupported("pre-tokenizer", node);
  }
}

void tokenizer::impl::load_post_processor(const json& node) {
  if (node.is_null())
    return;
  const std::string type = text_of(node, "type");
  if (type == "Sequence") {
    for (const auto& child : node.at("processors"))
      load_post_processor(child);
  } else if (type == "ByteLevel") {
    // Adjusts offsets only; ids are unchanged.
  } else if (type == "TemplateProcessing") {
    const json& specials = node.at("special_tokens");
    for (const auto& item : node.at("single")) {
      template_item entry;
      if (item.contains("Sequence")) {
        entry.is_sequence = true;
      } else if (item.contains("SpecialToken")) {
        const std::string name = item.at("SpecialToken").at("id").get<std::string>();
        if (!specials.contains(name))
          throw input_error(where,
                            fmt::format("post_processor uses '{}' without defining it", name),
                            "the tokenizer.json is corrupted");
        for (const auto& id : specials.at(name).at("ids"))
          entry.ids.push_back(token_id(id, where, "post_processor token", name));
      } else {
        unsupported("TemplateProcessing entry", item);
      }
      template_single.push_back(std::move(entry));
    }
  } else {
    unsupported("post-processor", node);
  }
}

void tokenizer::impl::load_model(const json& node) {
  if (text_of(node, "type") != "BPE" || !text_of(node, "continuing_subword_prefix").empty() ||
      !text_of(node, "end_of_word_suffix").empty() || node.value("byte_fallback", false) ||
      !node.value("dropout", json()).is_null())
    unsupported("model", json{{"type", text_of(node, "type")}});
  const json& vocab_node = node.at("vocab");
  if (!vocab_node.is_object())
    throw input_error(where, "model.vocab is not an object of token: id",
                      "the tokenizer.json is corrupted: copy it again from the model's source");
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(vocab_node.size());
  for (const auto& [token, id] : vocab_node.items())
    vocab[token] = token_id(id, where, "vocabulary token", token);
  std::vector<std::pair<std::string, std::string>> merges;
  for (const auto& m : node.at("merges")) {
    if (m.is_array() && m.size() == 2) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else if (m.is_string()) {
      const std::string text = m.get<std::string>();
      auto space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos)
        throw input_error(where, fmt::format("merge '{}' is not two symbols", text),
                          "the tokenizer.json is corrupted");
      merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else {
      throw input_error(where,
                        fmt::format("merge {} is neither \"a b\" nor [a, b]", json_excerpt(m)),
                        "the tokenizer.json is corrupted");
    }
  }
  int32_t size = 0;
  for (const auto& [token, id] : vocab)
    size = std::max(size, id + 1);
  tokens.resize(static_cast<size_t>(size));
  for (const auto& [token, id] : vocab)
    tokens[static_cast<size_t>(id)] = token;
  model = std::make_unique<bpe_model>(std::move(vocab), merges, node.value("ignore_merges", false),
                                      where);
}

void tokenizer::impl::load_added_tokens(const json& node) {
  for (const auto& item : node) {
    added_token t;
    t.content = item.at("content").get<std::string>();
    t.id = token_id(item.at("id"), where, "added token", t.content);
    t.single_word = item.value("single_word", false);
    t.lstrip = item.value("lstrip", false);
    t.rstrip = item.value("rstrip", false);
    t.special = item.value("special", false);
    t.normalized = item.value("normalized", !t.special);
    if (t.content.empty() || find_invalid_utf8(t.content) != std::string::npos)
      throw input_error(where,
                        fmt::format("added token {} is empty or not UTF-8", json_excerpt(item)),
                        "the tokenizer.json is corrupted");
    if (t.normalized)
      t.content = normalize(t.content, normal_forms);
    if (static_cast<size_t>(t.id) >= tokens.size())
      tokens.resize(static_cast<size_t>(t.id) + 1);
    for (const auto& other : added)
      if (other.id == t.id && other.content != t.content)
        throw input_error(
          where,
          fmt::format("added tokens '{}' and '{}' share the id {}", other.content, t.content, t.id),
          "the tokenizer.json is corrupted: copy it again from the model's source");
    tokens[static_cast<size_t>(t.id)] = t.content;
    added_ids[t.content] = t.id;
    added.push_back(std::move(t));
  }
  special.assign(tokens.size(), 0);
  for (size_t i = 0; i < added.size(); ++i) {
    if (added[i].special)
      special[static_cast<size_t>(added[i].id)] = 1;
    auto& buckets = added[i].normalized ? normalized_by_byte : raw_by_byte;
    has_normalized_tokens = has_normalized_tokens || added[i].normalized;
    buckets[static_cast<uint8_t>(added[i].content[0])].push_back(i);
  }
  for (auto* buckets : {&raw_by_byte, &normalized_by_byte})
    for (auto& bucket : *buckets)
      std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
        return added[a].content.size() > added[b].content.size();
      });
}

tokenizer tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  const std::string text = read_regular_file(
    tokenizer_json, "a Hugging Face model directory holds tokenizer.json next to config.json");
  return from_json(text, tokenizer_json.string());
}

tokenizer tokenizer::from_json(std::string_view json_text, const std::string& where) {
  auto p = std::make_unique<impl>();
  p->where = where;
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw input_error(where, fmt::format("not valid JSON: {}", e.what()),
                      "the file is truncated or corrupted: copy it again");
  }
  try {
    if (!root.is_object() || !root.contains("model"))
      throw input_error(where, "has no \"model\" section", "is this a tokenizer.json?");
    p->load_normalizer(root.value("normalizer", json()));
    p->load_pre_tokenizer(root.value("pre_tokenizer", json()));
    p->load_model(root.at("model"));
    p->load_added_tokens(root.value("added_tokens", json::array()));
    p->load_post_processor(root.value("post_processor", json()));
    const json decoder = root.value("decoder", json());
    if (!decoder.is_null() && text_of(decoder, "type") != "ByteLevel")
      p->unsupported("decoder", decoder);
    p->byte_level_decoder = !decoder.is_null();
  } catch (const json::exception& e) {
    throw input_error(where, fmt::format("unexpected structure: {}", e.what()),
                      "the file is truncated or corrupted: copy it again");
  }
  return tokenizer(std::move(p));
}

} // namespace pedagogy::models
