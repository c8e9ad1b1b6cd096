// Byte-level BPE, the model behind the Qwen2/2.5/3 and Llama-3 tokenizers (GPT-2's scheme).
//
// Every byte of a pre-token is first spelled as one printable character (GPT-2's bytes_to_unicode
// table, so that the vocabulary is plain text), then adjacent symbols are merged, lowest merge
// rank first, until no listed merge applies. The ids are the vocabulary ids of the final symbols.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pedagogy::models {

// GPT-2's reversible byte <-> printable character table.
class byte_alphabet {
public:
  byte_alphabet();
  // The UTF-8 spelling of each byte's character, e.g. ' ' -> "Ġ".
  const std::string& spell(uint8_t byte) const {
    return spelling_[byte];
  }
  // Appends the bytes a byte-level string stands for; returns false on a character outside the
  // table (an added token's text, for instance), which is then copied as it is.
  bool unspell(std::string_view spelled, std::string& bytes) const;

private:
  std::array<std::string, 256> spelling_;
  std::unordered_map<uint32_t, uint8_t> byte_of_; // code point -> byte
};

class bpe_model {
public:
  // `merges` are pairs of vocabulary strings in rank order.
  bpe_model(std::unordered_map<std::string, int32_t> vocab,
            const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
            const std::string& where);

  // Appends the ids of one pre-token given as raw bytes.
  void encode_word(std::string_view bytes, std::vector<int32_t>& out) const;

  const std::unordered_map<std::string, int32_t>& vocab() const {
    return vocab_;
  }
  const byte_alphabet& alphabet() const {
    return alphabet_;
  }

private:
  struct merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, merge> merges_; // (left id, right id) -> rank and merged id
  std::array<int32_t, 256> byte_ids_{};        // id of each single byte's symbol
  bool ignore_merges_ = false;                 // a pre-token found whole in the vocab is one id
  byte_alphabet alphabet_;
};

} // namespace pedagogy::models
