// JSONL problem sets (see problems.hpp).
#include "classroom/problems.hpp"

#include "classroom/text.hpp"
#include "runtime/errors.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace pedagogy::classroom {

std::vector<problem> load_problems(const std::filesystem::path& path, const problem_fields& fields,
                                   int64_t max_problems) {
  std::ifstream in(path);
  if (!in)
    throw input_error(path.string(), "cannot read the problem set",
                      "check [data] train (or eval problems) in the config");
  std::vector<problem> out;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (trim_ascii(line).empty())
      continue;
    const std::string where = fmt::format("{}:{}", path.string(), number);
    auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded() || !row.is_object())
      throw input_error(where, "not a JSON object",
                        "each line holds one {\"problem\": ..., \"answer\": ...}");
    auto text_of = [&](const std::string& field) {
      auto it = row.find(field);
      if (it == row.end())
        throw input_error(where, fmt::format("no field '{}'", field),
                          "set [data] problem_field / answer_field to the file's field names");
      if (it->is_string())
        return it->get<std::string>();
      if (it->is_number())
        return it->dump(); // the reference compares str(answer)
      throw input_error(where, fmt::format("field '{}' is neither text nor a number", field),
                        "write it as a string");
    };
    problem p{text_of(fields.problem), text_of(fields.answer), number};
    if (trim_ascii(p.text).empty() || trim_ascii(p.answer).empty())
      throw input_error(where, "empty problem or answer", "remove the row or fill it in");
    out.push_back(std::move(p));
    if (max_problems > 0 && static_cast<int64_t>(out.size()) >= max_problems)
      break;
  }
  if (out.empty())
    throw input_error(path.string(), "holds no problems", "one JSON object per line");
  return out;
}

} // namespace pedagogy::classroom
