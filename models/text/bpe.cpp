// Byte-level BPE (see bpe.hpp). Merging keeps a heap of candidate pairs, so a long pre-token
// (a run of thousands of spaces) costs n log n, not n^2.
#include "models/text/bpe.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <queue>

namespace pedagogy::models {

namespace {

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

} // namespace

byte_alphabet::byte_alphabet() {
  // Printable Latin-1 bytes stand for themselves; the rest get code points from 256 upwards.
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
    append_utf8(cp, spelling_[b]);
    byte_of_[cp] = static_cast<uint8_t>(b);
  }
}

bool byte_alphabet::unspell(std::string_view spelled, std::string& bytes) const {
  size_t i = 0;
  std::string decoded;
  while (i < spelled.size()) {
    auto lead = static_cast<uint8_t>(spelled[i]);
    uint32_t cp = 0;
    size_t length = 1;
    if (lead < 0x80) {
      cp = lead;
    } else if ((lead & 0xE0) == 0xC0 && i + 1 < spelled.size()) {
      cp = ((lead & 0x1F) << 6) | (static_cast<uint8_t>(spelled[i + 1]) & 0x3F);
      length = 2;
    } else {
      return false; // the table uses only one- and two-byte characters
    }
    auto it = byte_of_.find(cp);
    if (it == byte_of_.end())
      return false;
    decoded += static_cast<char>(it->second);
    i += length;
  }
  bytes += decoded;
  return true;
}

bpe_model::bpe_model(std::unordered_map<std::string, int32_t> vocab,
                     const std::vector<std::pair<std::string, std::string>>& merges,
                     bool ignore_merges, const std::string& where)
  : vocab_(std::move(vocab)), ignore_merges_(ignore_merges) {
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(alphabet_.spell(static_cast<uint8_t>(b)));
    if (it == vocab_.end())
      throw input_error(
        where, fmt::format("the vocabulary lacks the byte-level symbol for byte 0x{:02X}", b),
        "only byte-level BPE tokenizers (GPT-2, Qwen, Llama-3) are supported");
    byte_ids_[b] = it->second;
  }
  merges_.reserve(merges.size());
  int32_t rank = 0;
  for (const auto& [left, right] : merges) {
    auto a = vocab_.find(left);
    auto b = vocab_.find(right);
    auto m = vocab_.find(left + right);
    if (a == vocab_.end() || b == vocab_.end() || m == vocab_.end())
      throw input_error(where,
                        fmt::format("merge #{} ('{}' '{}') uses a symbol missing from the vocab",
                                    rank, left, right),
                        "the tokenizer.json is corrupted or truncated");
    // A merge listed twice keeps its last rank, as Hugging Face's map-building does.
    merges_.insert_or_assign(key(a->second, b->second), merge{rank, m->second});
    ++rank;
  }
}

void bpe_model::encode_word(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty())
    return;
  if (ignore_merges_) {
    std::string spelled;
    for (char c : bytes)
      spelled += alphabet_.spell(static_cast<uint8_t>(c));
    if (auto it = vocab_.find(spelled); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Symbols form a doubly linked list over positions; `id < 0` marks a symbol merged away.
  const int n = static_cast<int>(bytes.size());
  std::vector<int32_t> id(n);
  std::vector<int> prev(n);
  std::vector<int> next(n);
  for (int i = 0; i < n; ++i) {
    id[i] = byte_ids_[static_cast<uint8_t>(bytes[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct candidate {
    int32_t rank;
    int left;
    int32_t left_id;
    int32_t right_id;
    bool operator>(const candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left; // lowest rank, then leftmost
    }
  };
  std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
  auto push = [&](int left) {
    int right = next[left];
    if (left < 0 || right < 0)
      return;
    if (auto it = merges_.find(key(id[left], id[right])); it != merges_.end())
      heap.push({it->second.rank, left, id[left], id[right]});
  };
  for (int i = 0; i + 1 < n; ++i)
    push(i);
  while (!heap.empty()) {
    candidate c = heap.top();
    heap.pop();
    int right = next[c.left];
    // Skip candidates made stale by an earlier merge of either symbol.
    if (id[c.left] != c.left_id || right < 0 || id[right] != c.right_id)
      continue;
    id[c.left] = merges_.at(key(c.left_id, c.right_id)).merged;
    id[right] = -1;
    next[c.left] = next[right];
    if (next[right] >= 0)
      prev[next[right]] = c.left;
    if (prev[c.left] >= 0)
      push(prev[c.left]);
    push(c.left);
  }
  for (int i = 0; i >= 0; i = next[i])
    out.push_back(id[i]);
}

} // namespace pedagogy::models
