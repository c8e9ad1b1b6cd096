// The tokenizer's encode and decode pipeline (see tokenizer.hpp): added tokens, normalization,
// pre-tokenization, byte-level BPE with a word cache, the post-processor's template.
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
using tokenizer_detail::normal_form;

bool is_word_char(char32_t c) {
  if (c == '_')
    return true;
  auto category = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO) ||
         (category >= UTF8PROC_CATEGORY_ND && category <= UTF8PROC_CATEGORY_NO);
}

} // namespace

namespace tokenizer_detail {

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

} // namespace tokenizer_detail

using tokenizer_detail::normalize;

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
