// A scratch folder for one test: fs::temp_directory_path()/pedagogy_<name>_<pid>, removed when
// the temp_dir goes out of scope. The pid keeps test cases that CTest runs in parallel (each in a
// process of its own) out of each other's folders.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace pedagogy::testing {

class temp_dir {
public:
  enum class start { empty, absent }; // an empty folder, or no folder yet (the test creates it)

  explicit temp_dir(const std::string& name, start at = start::empty)
    : path(std::filesystem::temp_directory_path() /
           ("pedagogy_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    if (at == start::empty)
      std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path path;
};

} // namespace pedagogy::testing
