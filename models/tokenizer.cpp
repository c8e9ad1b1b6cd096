// Loads tokenizer.json and runs the encode/decode pipeline (see tokenizer.hpp).
#include "models/tokenizer.hpp"

#include "models/bpe.hpp"
#include "models/model_config.hpp"
#include "models/model_files.hpp"
#include "models/pretokenizer.hpp"
#include "models/utf8.hpp"
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

enum class normal_form { nfc, nfd, nfkc, nfkd };

struct pre_step {
  std::unique_ptr<regex_splitter> splitter; // Split, or ByteLevel with use_regex
  bool add_prefix_space = false;            // ByteLevel only
};

// A post-processor template entry: the input sequence, or fixed special-token ids.
struct template_item {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};

bool is_word_char(char32_t c) {
  if (c == '_')
    return true;
  auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO) ||
         (category >= UTF8PROC_CATEGORY_ND && category <= UTF8PROC_CATEGORY_NO);
}

std::string normalize(std::string_view text, const std::vector<normal_form>& forms) {
  std::string current(text);
  for (normal_form form : forms) {
    if (std::all_of(current.begin(), current.end(),
                    [](char c) { return static_cast<uint8_t>(c) < 0x80; }))
      continue; // ASCII is already in every normal form
    int options = UTF8PROC_STABLE;
    switch (form) {
      case normal_form::nfc:
        options |= UTF8PROC_COMPOSE;
        break;
      case normal_form::nfd:
        options |= UTF8PROC_DECOMPOSE;
        break;
      case normal_form::nfkc:
        options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
        break;
      case normal_form::nfkd:
        options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
        break;
    }
    utf8proc_uint8_t* out = nullptr;
    utf8proc_ssize_t length = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(current.data()),
      static_cast<utf8proc_ssize_t>(current.size()), &out, static_cast<utf8proc_option_t>(options));
    PEDAGOGY_CHECK(length >= 0, "utf8proc rejected validated text: {}", utf8proc_errmsg(length));
    current.assign(reinterpret_cast<char*>(out), static_cast<size_t>(length));
    std::free(out);
  }
  return current;
}

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

// ---- the tokenizer -----------------------------------------------------------------------------

struct tokenizer::impl {
  std::string where;
  std::unique_ptr<bpe_model> model;
  std::vector<std::string> tokens; // id -> text
  std::vector<uint8_t> special;    // id -> 1 when special
  std::vector<added_token> added;
  std::unordered_map<std::string, int32_t> added_ids;
  // Added tokens by first byte, longest first; raw = matched before normalization.
  std::array<std::vector<size_t>, 256> raw_by_byte;
  std::array<std::vector<size_t>, 256> normalized_by_byte;
  bool has_normalized_tokens = false;
  std::vector<normal_form> normal_forms;
  std::vector<pre_step> pre_steps;
  std::vector<template_item> template_single;
  bool byte_level_decoder = true;

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> word_cache;

  [[noreturn]] void unsupported(const std::string& component, const json& value) const {
    throw input_error(where, fmt::format("unsupported {}: {}", component, json_excerpt(value, 200)),
                      "only byte-level BPE tokenizers (GPT-2, Qwen2/2.5/3, Llama-3) are supported");
  }

  void load_normalizer(const json& node);
  void load_pre_tokenizer(const json& node);
  void load_post_processor(const json& node);
  void load_model(const json& node);
  void load_added_tokens(const json& node);

  // Splits `text` at added tokens from `buckets`; calls piece(text, token id or -1).
  template <class F>
  void split_added(std::string_view text, const std::array<std::vector<size_t>, 256>& buckets,
                   F&& piece) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
};

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

template <class F>
void tokenizer::impl::split_added(std::string_view text,
                                  const std::array<std::vector<size_t>, 256>& buckets,
                                  F&& piece) const {
  // Leftmost-longest matches first, then Hugging Face's single_word / lstrip / rstrip rules.
  struct match {
    size_t begin, end, token;
  };
  std::vector<match> matches;
  for (size_t pos = 0; pos < text.size();) {
    const auto& bucket = buckets[static_cast<uint8_t>(text[pos])];
    size_t found = SIZE_MAX;
    for (size_t index : bucket) {
      const std::string& content = added[index].content;
      if (text.compare(pos, content.size(), content) == 0) {
        found = index;
        break; // longest first
      }
    }
    if (found == SIZE_MAX) {
      ++pos;
      continue;
    }
    matches.push_back({pos, pos + added[found].content.size(), found});
    pos += added[found].content.size();
  }
  auto char_before = [&](size_t at) {
    size_t start = at;
    do
      --start;
    while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80);
    char32_t cp = 0;
    utf8_char(text, start, &cp);
    return std::pair{cp, start};
  };
  size_t done = 0;
  for (const match& m : matches) {
    size_t begin = m.begin;
    size_t end = m.end;
    const added_token& token = added[m.token];
    if (begin < done)
      continue; // inside the whitespace an rstrip already took
    if (token.single_word) {
      char32_t after = 0;
      bool word_before = begin > 0 && is_word_char(char_before(begin).first);
      bool word_after =
        end < text.size() && utf8_char(text, end, &after) > 0 && is_word_char(after);
      if (word_before || word_after)
        continue;
    }
    if (token.lstrip) {
      while (begin > done) {
        auto [cp, start] = char_before(begin);
        if (!is_unicode_whitespace(cp))
          break;
        begin = start;
      }
    }
    if (token.rstrip) {
      char32_t cp = 0;
      size_t length = 0;
      while (end < text.size() && (length = utf8_char(text, end, &cp)) > 0 &&
             is_unicode_whitespace(cp))
        end += length;
    }
    if (begin > done)
      piece(text.substr(done, begin - done), -1);
    piece(text.substr(begin, end - begin), token.id);
    done = end;
  }
  if (done < text.size())
    piece(text.substr(done), -1);
}

void tokenizer::impl::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  {
    std::lock_guard guard{cache_mutex};
    if (auto it = word_cache.find(std::string(word)); it != word_cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  model->encode_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (word.size() <= 256) { // long runs are rare and would crowd the cache
    std::lock_guard guard{cache_mutex};
    if (word_cache.size() > 500'000)
      word_cache.clear();
    word_cache.emplace(std::string(word), std::move(ids));
  }
}

void tokenizer::impl::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string> pieces{std::string(text)};
  std::vector<std::pair<size_t, size_t>> spans;
  for (const pre_step& step : pre_steps) {
    std::vector<std::string> next;
    for (auto& piece : pieces) {
      if (step.add_prefix_space && (piece.empty() || piece[0] != ' '))
        piece.insert(piece.begin(), ' ');
      if (!step.splitter) {
        next.push_back(std::move(piece));
        continue;
      }
      spans.clear();
      step.splitter->split(piece, spans);
      for (auto [begin, end] : spans)
        next.emplace_back(piece, begin, end - begin);
    }
    pieces = std::move(next);
  }
  for (const auto& piece : pieces)
    encode_word(piece, out);
}

tokenizer::tokenizer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
tokenizer::tokenizer(tokenizer&&) noexcept = default;
tokenizer& tokenizer::operator=(tokenizer&&) noexcept = default;
tokenizer::~tokenizer() = default;

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

std::vector<int32_t> tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const impl& t = *impl_;
  if (size_t bad = find_invalid_utf8(text); bad != std::string_view::npos)
    throw input_error("tokenizer input", fmt::format("invalid UTF-8 at byte {}", bad),
                      "text must be UTF-8");
  std::vector<int32_t> ids;
  t.split_added(text, t.raw_by_byte, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      ids.push_back(id);
      return;
    }
    std::string normal = normalize(piece, t.normal_forms);
    if (!t.has_normalized_tokens) {
      t.encode_plain(normal, ids);
      return;
    }
    t.split_added(normal, t.normalized_by_byte, [&](std::string_view inner, int32_t inner_id) {
      if (inner_id >= 0)
        ids.push_back(inner_id);
      else
        t.encode_plain(inner, ids);
    });
  });
  if (!add_special_tokens || t.template_single.empty())
    return ids;
  std::vector<int32_t> framed;
  for (const auto& item : t.template_single) {
    const auto& part = item.is_sequence ? ids : item.ids;
    framed.insert(framed.end(), part.begin(), part.end());
  }
  return framed;
}

std::string tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const impl& t = *impl_;
  std::string bytes;
  bool first = true;
  for (int32_t id : ids) {
    // Ids past the tokenizer (models pad their vocabulary) decode to nothing, as in HF.
    if ((skip_special_tokens && is_special(id)) || id < 0 ||
        static_cast<size_t>(id) >= t.tokens.size() || t.tokens[static_cast<size_t>(id)].empty())
      continue;
    const std::string& token = t.tokens[static_cast<size_t>(id)];
    if (!t.byte_level_decoder) {
      bytes += (first ? "" : " ") + token;
    } else if (!t.model->alphabet().unspell(token, bytes)) {
      bytes += token; // a token spelled outside the byte table keeps its own bytes
    }
    first = false;
  }
  return utf8_lossy(bytes);
}

std::optional<int32_t> tokenizer::token_to_id(std::string_view token) const {
  if (auto it = impl_->added_ids.find(std::string(token)); it != impl_->added_ids.end())
    return it->second;
  if (auto it = impl_->model->vocab().find(std::string(token)); it != impl_->model->vocab().end())
    return it->second;
  return std::nullopt;
}

const std::string& tokenizer::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->tokens.size() ||
      impl_->tokens[static_cast<size_t>(id)].empty())
    throw input_error(impl_->where, fmt::format("token id {} is not in the vocabulary", id),
                      fmt::format("ids run from 0 to {}", impl_->tokens.size() - 1));
  return impl_->tokens[static_cast<size_t>(id)];
}

int32_t tokenizer::vocab_size() const {
  return static_cast<int32_t>(impl_->tokens.size());
}

const std::vector<added_token>& tokenizer::added_tokens() const {
  return impl_->added;
}

bool tokenizer::is_special(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() &&
         impl_->special[static_cast<size_t>(id)] != 0;
}

} // namespace pedagogy::models
