// Problem sets: JSONL files with one problem per line, e.g.
//   {"problem": "A train travels 120 km in 2 hours. What is its speed in km/h?", "answer": "60"}
// Field names are configurable ([data] problem_field, answer_field); a numeric answer is taken as
// its text, as the reference's str() does. Any bad row stops the load with its line number.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pedagogy::classroom {

struct problem {
  std::string text;
  std::string answer;
  int64_t line = 0; // in the file, for messages
};

struct problem_fields {
  std::string problem = "problem";
  std::string answer = "answer";
};

// Reads every problem (at most `max_problems`; 0 = all). Throws input_error ("file:line").
std::vector<problem> load_problems(const std::filesystem::path& path, const problem_fields& fields,
                                   int64_t max_problems = 0);

} // namespace pedagogy::classroom
