// The bundled problem sets (data/problems_train.jsonl, data/problems_test.jsonl) are generated,
// not collected: arithmetic and algebra word problems drawn from a few dozen templates with
// random numbers, each with its exact answer (an integer or a reduced fraction). The generator
// is portable (its own splitmix64 stream, no std distributions), so a seed gives the same file
// on every machine; `pedagogy make-problems` writes them and a test checks the shipped files
// are its output.
#pragma once

#include "classroom/problems.hpp"

#include <cstdint>
#include <vector>

namespace pedagogy::classroom {

// `count` distinct problems from `seed`, skipping any whose text is in `exclude` (to keep a
// test split apart from the training split).
std::vector<problem> generate_problems(uint64_t seed, int64_t count,
                                       const std::vector<problem>& exclude = {});

// One JSONL line, {"problem": ..., "answer": ...}.
std::string to_jsonl(const problem& p);

} // namespace pedagogy::classroom
