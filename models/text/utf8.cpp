// UTF-8 validation and Rust-compatible lossy decoding (see utf8.hpp).
#include "models/text/utf8.hpp"

#include <cstdint>

namespace pedagogy::models {

namespace {

// Length of the maximal subpart of an invalid sequence at `i` (Unicode §3.9, "U+FFFD
// substitution of maximal subparts"): the longest prefix that could start a valid character.
size_t invalid_length(std::string_view s, size_t i) {
  const uint8_t lead = static_cast<uint8_t>(s[i]);
  size_t expected = (lead >= 0xC2 && lead <= 0xDF)   ? 2
                    : (lead >= 0xE0 && lead <= 0xEF) ? 3
                    : (lead >= 0xF0 && lead <= 0xF4) ? 4
                                                     : 1;
  size_t k = 1;
  for (; k < expected && i + k < s.size(); ++k) {
    uint8_t c = static_cast<uint8_t>(s[i + k]);
    uint8_t low = 0x80;
    uint8_t high = 0xBF;
    if (k == 1) {
      if (lead == 0xE0)
        low = 0xA0;
      else if (lead == 0xED)
        high = 0x9F;
      else if (lead == 0xF0)
        low = 0x90;
      else if (lead == 0xF4)
        high = 0x8F;
    }
    if (c < low || c > high)
      break;
  }
  return k;
}

} // namespace

// Decodes one UTF-8 character at `i`; returns its length, or 0 when the bytes are not valid.
size_t utf8_char(std::string_view s, size_t i, char32_t* out) {
  auto b = [&](size_t k) {
    return static_cast<uint8_t>(s[k]);
  };
  const uint8_t lead = b(i);
  size_t length = 0;
  char32_t cp = 0;
  if (lead < 0x80)
    return *out = lead, 1;
  if (lead >= 0xC2 && lead <= 0xDF)
    length = 2, cp = lead & 0x1F;
  else if (lead >= 0xE0 && lead <= 0xEF)
    length = 3, cp = lead & 0x0F;
  else if (lead >= 0xF0 && lead <= 0xF4)
    length = 4, cp = lead & 0x07;
  else
    return 0;
  for (size_t k = 1; k < length; ++k) {
    if (i + k >= s.size() || (b(i + k) & 0xC0) != 0x80)
      return 0;
    // The second byte's range excludes overlong forms, surrogates and code points past U+10FFFF.
    if (k == 1) {
      uint8_t second = b(i + 1);
      if ((lead == 0xE0 && second < 0xA0) || (lead == 0xED && second > 0x9F) ||
          (lead == 0xF0 && second < 0x90) || (lead == 0xF4 && second > 0x8F))
        return 0;
    }
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  *out = cp;
  return length;
}

size_t find_invalid_utf8(std::string_view text) {
  char32_t cp = 0;
  for (size_t i = 0; i < text.size();) {
    size_t length = utf8_char(text, i, &cp);
    if (length == 0)
      return i;
    i += length;
  }
  return std::string_view::npos;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  char32_t cp = 0;
  for (size_t i = 0; i < bytes.size();) {
    size_t length = utf8_char(bytes, i, &cp);
    if (length > 0) {
      out.append(bytes, i, length);
      i += length;
    } else {
      out += "\xEF\xBF\xBD"; // U+FFFD
      i += invalid_length(bytes, i);
    }
  }
  return out;
}

} // namespace pedagogy::models
