// Pre-tokenization: splitting normalized text into the pieces BPE sees, as Hugging Face's
// `Split` (regex, behaviour "Isolated") and `ByteLevel` pre-tokenizers do.
//
// Patterns are compiled with PCRE2 in UTF + Unicode-property mode. `\s` and `\S` are rewritten to
// Unicode White_Space explicitly, which is what the Rust library's Oniguruma regexes mean by them
// (PCRE2's own `\s` also matches U+180E).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pedagogy::models {

// The byte ranges [begin, end) of the pieces of `text`: every match and every gap between
// matches, in order, with nothing dropped (HF's "Isolated" behaviour).
class regex_splitter {
public:
  regex_splitter(const std::string& pattern, const std::string& where);
  ~regex_splitter();
  regex_splitter(regex_splitter&&) noexcept;
  regex_splitter& operator=(regex_splitter&&) noexcept;

  void split(std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces) const;

private:
  struct compiled;
  std::unique_ptr<compiled> regex_;
};

// The pattern with `\s`/`\S` spelled as explicit White_Space classes (exposed for tests).
std::string with_unicode_whitespace(const std::string& pattern);

// GPT-2's split pattern, used by a ByteLevel pre-tokenizer with use_regex = true.
inline constexpr const char* gpt2_pattern =
  R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Unicode White_Space, as Rust's char::is_whitespace and Oniguruma's \s define it.
bool is_unicode_whitespace(char32_t c);

} // namespace pedagogy::models
