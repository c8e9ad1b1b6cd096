// Regex splitting with PCRE2 (see pretokenizer.hpp).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "models/text/pretokenizer.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <pcre2.h>

namespace pedagogy::models {

namespace {

// Unicode White_Space as the body of a character class.
constexpr const char* white_space_class =
  R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})";

} // namespace

bool is_unicode_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

std::string with_unicode_whitespace(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char e = pattern[i + 1];
      if (e == 's')
        out += in_class ? std::string(white_space_class) : fmt::format("[{}]", white_space_class);
      else if (e == 'S' && !in_class)
        out += fmt::format("[^{}]", white_space_class);
      else
        out.append(pattern, i, 2); // any other escape, \S inside a class included, stays
      ++i;
      continue;
    }
    if (c == '[' && !in_class)
      in_class = true;
    else if (c == ']' && in_class)
      in_class = false;
    out += c;
  }
  return out;
}

struct regex_splitter::compiled {
  pcre2_code* code = nullptr;
  ~compiled() {
    if (code != nullptr)
      pcre2_code_free(code);
  }
};

regex_splitter::regex_splitter(const std::string& pattern, const std::string& where)
  : regex_(std::make_unique<compiled>()) {
  const std::string translated = with_unicode_whitespace(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                               PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (regex_->code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    throw input_error(where,
                      fmt::format("the pre-tokenizer regex /{}/ does not compile at offset {}: {}",
                                  pattern, offset, reinterpret_cast<const char*>(message)),
                      "the tokenizer.json is corrupted, or uses a regex feature PCRE2 lacks");
  }
  pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE); // falls back to the interpreter on failure
}

regex_splitter::~regex_splitter() = default;
regex_splitter::regex_splitter(regex_splitter&&) noexcept = default;
regex_splitter& regex_splitter::operator=(regex_splitter&&) noexcept = default;

void regex_splitter::split(std::string_view text,
                           std::vector<std::pair<size_t, size_t>>& pieces) const {
  pcre2_match_data* match = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  PEDAGOGY_CHECK(match != nullptr, "out of memory for PCRE2 match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t gap_start = 0;
  size_t position = 0;
  while (position <= text.size()) {
    // The text was validated as UTF-8 once, before pre-tokenization.
    int rc =
      pcre2_match(regex_->code, subject, text.size(), position, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc < 0)
      break; // PCRE2_ERROR_NOMATCH, or a resource limit: the rest is one gap
    PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
    size_t begin = ovector[0];
    size_t end = ovector[1];
    if (begin > gap_start)
      pieces.emplace_back(gap_start, begin);
    if (end > begin)
      pieces.emplace_back(begin, end);
    gap_start = end;
    if (end == begin) {
      // An empty match: step over one UTF-8 character so the scan moves on.
      if (end >= text.size())
        break;
      position = end + 1;
      while (position < text.size() && (static_cast<uint8_t>(text[position]) & 0xC0) == 0x80)
        ++position;
    } else {
      position = end;
    }
  }
  if (gap_start < text.size())
    pieces.emplace_back(gap_start, text.size());
  pcre2_match_data_free(match);
}

} // namespace pedagogy::models
