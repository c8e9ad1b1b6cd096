// JSONL problem sets (see problems.hpp).
#include "classroom/problems.hpp"

#include "classroom/text.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "runtime/logging.hpp"
#include "runtime/seeds.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <numeric>

namespace pedagogy::classroom {

namespace {

using json = nlohmann::json;

// The 1-based byte where the first malformed UTF-8 sequence of `text` starts (overlong forms,
// surrogates and code points above U+10FFFF included), or 0 when all of it is UTF-8.
size_t invalid_utf8_at(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF; // the allowed range of the second byte
    if (lead < 0x80)
      length = 1;
    else if (lead >= 0xC2 && lead <= 0xDF)
      length = 2;
    else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      low = lead == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
      high = lead == 0xED ? 0x9F : 0xBF; // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      low = lead == 0xF0 ? 0x90 : 0x80;
      high = lead == 0xF4 ? 0x8F : 0xBF; // nothing above U+10FFFF
    } else {
      return i + 1;
    }
    for (size_t k = 1; k < length; ++k) {
      if (i + k >= text.size())
        return i + 1; // the sequence that starts here is broken
      const auto next = static_cast<unsigned char>(text[i + k]);
      if (next < (k == 1 ? low : 0x80) || next > (k == 1 ? high : 0xBF))
        return i + 1; // the sequence that starts here is broken
    }
    i += length;
  }
  return 0;
}

// The top-level fields of one row, read with nlohmann's SAX parser because its DOM turns every
// number too large for 64 bits into a double (123456789012345678901234567890 would come back as
// 1.2345678901234568e+29) and reprints 0.1 or 1e5 in its own way. A number keeps the text it
// was written as; the reference compares str(answer), so digits must survive.
class row_reader : public nlohmann::json_sax<json> {
public:
  struct value {
    bool usable = false; // a string or a number
    std::string text;    // the string, or the number as written
    std::string kind;    // "an array", "a number", ... for messages
  };

  std::map<std::string, value> fields; // of the top-level object, the last of equal keys
  std::string row_kind;                // what the row is: "an object", "an array", ...
  std::string error;                   // a JSON syntax error, with its byte
  bool object = false;

  bool null() override {
    return scalar({false, {}, "null"});
  }
  bool boolean(bool) override {
    return scalar({false, {}, "a boolean"});
  }
  bool number_integer(number_integer_t v) override {
    return scalar({true, std::to_string(v), "a number"});
  }
  bool number_unsigned(number_unsigned_t v) override {
    return scalar({true, std::to_string(v), "a number"});
  }
  bool number_float(number_float_t, const string_t& text) override {
    return scalar({true, text, "a number"});
  }
  bool string(string_t& text) override {
    return scalar({true, text, "a string"});
  }
  bool binary(binary_t&) override {
    return scalar({false, {}, "binary data"});
  }
  bool start_object(std::size_t) override {
    if (depth_ == 0)
      object = true;
    scalar({false, {}, "an object"});
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    scalar({false, {}, "an array"});
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& name) override {
    if (depth_ == 1)
      key_ = name;
    return true;
  }
  bool parse_error(std::size_t byte, const std::string&,
                   const nlohmann::detail::exception& e) override {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 9: <why>".
    std::string why = e.what();
    if (auto colon = why.find(": "); colon != std::string::npos)
      why.erase(0, colon + 2);
    error = fmt::format("not valid JSON at byte {}: {}", byte, why);
    return false;
  }

private:
  bool scalar(value v) {
    if (depth_ == 0)
      row_kind = v.kind;
    else if (depth_ == 1 && object)
      fields[key_] = std::move(v);
    return true;
  }

  int depth_ = 0;
  std::string key_;
};

problem parse_row(const std::string& line, const std::string& where, const problem_fields& names,
                  int64_t number) {
  if (size_t byte = invalid_utf8_at(line))
    throw input_error(where, fmt::format("invalid UTF-8 at byte {}", byte),
                      "save the file as UTF-8");
  row_reader row;
  json::sax_parse(line, &row);
  if (!row.error.empty())
    throw input_error(where, row.error, "each line holds one {\"problem\": ..., \"answer\": ...}");
  if (!row.object)
    throw input_error(where, fmt::format("the row is {}, not an object", row.row_kind),
                      "each line holds one {\"problem\": ..., \"answer\": ...}");
  auto text_of = [&](const std::string& name) {
    auto it = row.fields.find(name);
    if (it == row.fields.end())
      throw input_error(where, fmt::format("no field '{}'", name),
                        "set [data] problem_field / answer_field to the file's field names");
    if (!it->second.usable)
      throw input_error(
        where, fmt::format("field '{}' is neither text nor a number but {}", name, it->second.kind),
        "write it as a string");
    return it->second.text;
  };
  problem p{text_of(names.problem), text_of(names.answer), number};
  if (trim_ascii(p.text).empty() || trim_ascii(p.answer).empty())
    throw input_error(where, "empty problem or answer", "remove the row or fill it in");
  return p;
}

// GSM8K's answer field is a worked solution ending in "#### 72", and its graders compare the
// text after the last "####" with the commas of numbers removed. Graded whole, such an answer
// could never match a boxed one, so each becomes that text, and the load says so once per file.
void take_gsm8k_answers(std::vector<problem>& rows, const std::string& file) {
  int64_t taken = 0;
  for (auto& p : rows) {
    const size_t mark = p.answer.rfind("####");
    if (mark == std::string::npos)
      continue;
    const std::string after = trim_ascii(std::string_view(p.answer).substr(mark + 4));
    std::string answer;
    for (size_t i = 0; i < after.size(); ++i) {
      const bool separator = after[i] == ',' && i > 0 && i + 1 < after.size() &&
                             std::isdigit(static_cast<unsigned char>(after[i - 1])) != 0 &&
                             std::isdigit(static_cast<unsigned char>(after[i + 1])) != 0;
      if (!separator)
        answer += after[i];
    }
    if (answer.empty())
      throw input_error(fmt::format("{}:{}", file, p.line), "nothing after '####' in the answer",
                        "a GSM8K answer ends in '#### <final answer>'");
    p.answer = std::move(answer);
    ++taken;
  }
  if (taken > 0)
    log::get("problems")
      ->warn("{} answers in {} were GSM8K solutions; graded against the text after ####", taken,
             file);
}

// `count` of the rows, chosen by the seed and kept in file order. Each row draws one value of
// the seed's stream and the smallest values win, so a row's chance does not depend on the
// rows after it.
std::vector<problem> sample(std::vector<problem> rows, int64_t count, uint64_t seed) {
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto draw = [seed](size_t row) {
    return stream_value(seed, row);
  };
  std::nth_element(order.begin(), order.begin() + count, order.end(),
                   [&](size_t a, size_t b) { return draw(a) < draw(b); });
  order.resize(static_cast<size_t>(count));
  std::sort(order.begin(), order.end());
  std::vector<problem> out;
  out.reserve(order.size());
  for (size_t row : order)
    out.push_back(std::move(rows[row]));
  return out;
}

} // namespace

std::vector<problem> load_problems(const std::filesystem::path& path, const problem_fields& fields,
                                   int64_t max_problems, uint64_t seed) {
  files::reader in(path, "point [data] train (or eval problems) at a JSONL problem set");
  std::vector<problem> out;
  std::string line;
  for (int64_t number = 1; in.next_line(line); ++number) {
    if (trim_ascii(line).empty())
      continue;
    out.push_back(parse_row(line, fmt::format("{}:{}", path.string(), number), fields, number));
  }
  take_gsm8k_answers(out, path.string());
  if (out.empty())
    throw input_error(path.string(), "holds no problems", "one JSON object per line");
  if (max_problems > 0 && static_cast<int64_t>(out.size()) > max_problems)
    return sample(std::move(out), max_problems, seed);
  return out;
}

std::vector<int64_t> epoch_order(int64_t problems, int64_t epoch, int64_t seed, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(problems));
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle)
    return order;
  uint64_t state =
    static_cast<uint64_t>(seed) * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch);
  for (size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[splitmix64(state) % i]);
  return order;
}

} // namespace pedagogy::classroom
