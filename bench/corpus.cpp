// The varied text corpus the tokenizer benchmark encodes (see bench.hpp).
#include "bench/bench.hpp"
#include "runtime/errors.hpp"

#include <fstream>
#include <random>

namespace pedagogy::bench {

std::vector<std::string> varied_corpus(size_t bytes, uint64_t seed) {
  static const std::vector<std::string> words = {
    "the",    "student", "teacher",  "asks",        "what",   "happens", "if",      "we",
    "divide", "both",    "sides",    "by",          "three",  "Let's",   "think",   "about",
    "it",     "step",    "fraction", "denominator", "you're", "right",   "Great",   "job",
    "Can",    "you",     "explain",  "why",         "answer", "problem", "equation"};
  static const std::vector<std::string> other = {"\\frac{3}{4}",
                                                 "\\boxed{42}",
                                                 "x^2 + 5x - 6 = 0",
                                                 "3.14159",
                                                 "1,250",
                                                 "-17",
                                                 "2024",
                                                 "def solve(x):\n    return 2 * x\n",
                                                 "if (a < b) { ++count; }",
                                                 "数学问题很有趣",
                                                 "こんにちは",
                                                 "안녕하세요",
                                                 "Привет",
                                                 "👍",
                                                 "🤔",
                                                 "naïve café",
                                                 "e\u0301",
                                                 "    ",
                                                 "\n\n",
                                                 "\t",
                                                 "  \n  "};
  std::mt19937_64 random(seed);
  auto pick = [&](const std::vector<std::string>& list) -> const std::string& {
    return list[random() % list.size()];
  };
  std::vector<std::string> documents;
  size_t total = 0;
  while (total < bytes) {
    std::string doc;
    const size_t length = 1000 + random() % 3000;
    while (doc.size() < length) {
      doc += (random() % 5 == 0) ? pick(other) : pick(words);
      doc += (random() % 12 == 0) ? ".\n" : " ";
    }
    total += doc.size();
    documents.push_back(std::move(doc));
  }
  return documents;
}

std::vector<std::string> file_corpus(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw input_error(path.string(), "cannot read the corpus file",
                      "pass a UTF-8 text file to --corpus");
  std::vector<std::string> documents(1);
  std::string line;
  while (std::getline(in, line)) {
    if (documents.back().size() >= 4096)
      documents.emplace_back();
    documents.back() += line + "\n";
  }
  return documents;
}

} // namespace pedagogy::bench
