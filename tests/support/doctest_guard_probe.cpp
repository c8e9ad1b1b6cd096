// A deliberately broken test binary for the runner's guards (tests/support/test_main.cpp): one case
// whose name CTest would split. It is built but never discovered; tests/CMakeLists.txt checks that
// listing its cases fails, as the build's discovery step would.
#include <doctest/doctest.h>

TEST_CASE("a name with a semicolon; which CTest splits") {
  CHECK(1 + 1 == 2);
}
