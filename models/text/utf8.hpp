// UTF-8 at the edges of the tokenizer: validating input, decoding one character, and turning
// arbitrary bytes into valid text the way Rust's String::from_utf8_lossy does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pedagogy::models {

// Decodes the character at byte `i` into `out`; returns its length, or 0 when the bytes there
// are not valid UTF-8 (overlong forms, surrogates and code points past U+10FFFF included).
size_t utf8_char(std::string_view s, size_t i, char32_t* out);

// The byte offset of the first invalid UTF-8 sequence, or npos when `text` is valid.
size_t find_invalid_utf8(std::string_view text);

// Replaces each maximal invalid UTF-8 subsequence by U+FFFD, as Rust's from_utf8_lossy does.
std::string utf8_lossy(std::string_view bytes);

} // namespace pedagogy::models
