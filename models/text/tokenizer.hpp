// A Hugging Face `tokenizer.json` tokenizer: the byte-level BPE family (GPT-2, Qwen2/2.5/3,
// Llama-3), producing the same ids as the `tokenizers` library.
//
// encode: added/special tokens are cut out first (leftmost-longest, honouring lstrip, rstrip,
// single_word and normalized), the rest is normalized (NFC for Qwen), split by the pre-tokenizer
// regex, spelled byte-level and merged by BPE; the post-processor adds BOS when asked.
// decode: the byte-level decoder turns tokens back into bytes and invalid UTF-8 into U+FFFD.
//
// Any other component type in the file is rejected with an error naming it, never guessed at.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pedagogy::models {

struct added_token {
  int32_t id = 0;
  std::string content;
  bool single_word = false; // match only as a whole word
  bool lstrip = false;      // the match swallows whitespace on its left
  bool rstrip = false;      // ... and on its right
  bool normalized = false;  // matched after normalization (else on the raw text)
  bool special = false;     // skipped by decode(skip_special_tokens = true)
};

class tokenizer {
public:
  static tokenizer from_file(const std::filesystem::path& tokenizer_json);
  // `where` names the source in errors.
  static tokenizer from_json(std::string_view json_text, const std::string& where);

  tokenizer(tokenizer&&) noexcept;
  tokenizer& operator=(tokenizer&&) noexcept;
  ~tokenizer();

  // Throws input_error when `text` is not valid UTF-8.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Ids the tokenizer does not know (a model's padded vocabulary) are skipped, as in HF.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's text as stored (byte-level spelling for vocabulary tokens); throws when unknown.
  const std::string& id_to_token(int32_t id) const;
  // One past the largest id, added tokens included.
  int32_t vocab_size() const;
  const std::vector<added_token>& added_tokens() const;
  bool is_special(int32_t id) const;

private:
  struct impl;
  explicit tokenizer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace pedagogy::models
