// The doctest runner shared by every unit-test binary, with two guards that keep CTest honest.
//
// CTest runs one doctest case per entry (`--test-case=NAME`), so an entry whose filter matches
// nothing would run zero cases and pass. Two ways that happens: a name with ';', which CTest's
// list syntax splits into two entries that each match nothing, and a filter that no longer
// matches after a rename. The first is refused when the cases are listed (that is, when the
// build discovers them, so the build fails); the second makes the run exit non-zero.
//
// CTest runs cases in parallel, several of them from one binary at a time; each process gets a
// temporary folder of its own (TMPDIR, which std::filesystem::temp_directory_path() reads), so
// cases that use fixed names under it cannot step on each other.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace {

unsigned cases_run = 0;

// Records how many cases passed the filters; reports nothing itself.
struct run_counter : doctest::IReporter {
  explicit run_counter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& stats) override {
    cases_run = stats.numTestCasesPassingFilters;
  }
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

REGISTER_LISTENER("run_counter", 1, run_counter);

// A name CTest cannot carry as one entry: ';' separates list items in CMake.
bool ctest_would_split(const char* name) {
  return std::strchr(name, ';') != nullptr;
}

} // namespace

int main(int argc, char** argv) {
  int bad_names = 0;
  for (const auto& test : doctest::detail::getRegisteredTests()) {
    if (ctest_would_split(test.m_name)) {
      std::fprintf(stderr,
                   "error: %s:%d: test case \"%s\" contains ';', which CTest splits into entries "
                   "that run nothing\n  hint: use ',' or ':' instead\n",
                   test.m_file.c_str(), test.m_line, test.m_name);
      ++bad_names;
    }
  }
  if (bad_names > 0)
    return 3;

  doctest::Context context(argc, argv);
  if (context.shouldExit()) // --list-test-cases, --help, ...: nothing is meant to run
    return context.run();

  namespace fs = std::filesystem;
  const char* base = std::getenv("TMPDIR");
  const fs::path own = fs::path(base != nullptr && *base != '\0' ? base : "/tmp") /
                       ("pedagogy-test-" + std::to_string(::getpid()));
  fs::create_directories(own);
  ::setenv("TMPDIR", own.c_str(), 1);
  const int status = context.run();
  std::error_code ignored;
  fs::remove_all(own, ignored);
  if (cases_run == 0) {
    std::fprintf(stderr, "error: no test case matched the filters, so nothing was tested\n"
                         "  hint: a renamed test case leaves a stale CTest entry: re-run cmake\n");
    return 1;
  }
  return status;
}
