// Problem sets: JSONL files with one problem per line, e.g.
//   {"problem": "A train travels 120 km in 2 hours. What is its speed in km/h?", "answer": "60"}
// Field names are configurable ([data] problem_field, answer_field); a numeric answer is taken as
// its text exactly as written (123456789012345678901234567890, 0.1, 1e5), as the reference's
// str() keeps it. An answer holding a GSM8K solution ("... #### 72") becomes the text after its
// last "####", commas of numbers removed, and the load warns once per file how many did. Any bad
// row stops the load with its line number and what is wrong with it.
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

// Reads every problem; with `max_problems` > 0 keeps a sample of that many rows chosen by
// `seed` (the same for the same file and seed), in file order. Every row is checked either way.
// Throws input_error ("file:line").
std::vector<problem> load_problems(const std::filesystem::path& path, const problem_fields& fields,
                                   int64_t max_problems = 0, uint64_t seed = 0);

// The problems of an epoch in a seeded order (a portable Fisher-Yates shuffle), or in file order
// when `shuffle` is false: `problems` indices, each once.
std::vector<int64_t> epoch_order(int64_t problems, int64_t epoch, int64_t seed, bool shuffle);

} // namespace pedagogy::classroom
