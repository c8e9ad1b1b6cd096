// Faults injected by tests (see faults.hpp).
#include "runtime/faults.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace pedagogy::faults {

bool fault_injected(std::string_view name) {
  const char* list = std::getenv("PEDAGOGY_FAULT_INJECT");
  if (list == nullptr)
    return false;
  const std::string_view all(list);
  for (size_t begin = 0; begin <= all.size();) {
    const size_t end = std::min(all.find(',', begin), all.size());
    if (all.substr(begin, end - begin) == name)
      return true;
    begin = end + 1;
  }
  return false;
}

} // namespace pedagogy::faults
