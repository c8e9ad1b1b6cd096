// Checked file writes: a line that does not fit is cut back whole, a failed atomic write keeps
// the old file, a partial last line left by a crash is dropped. RLIMIT_FSIZE stands in for a full
// disk: writes past the limit fail (EFBIG) exactly where ENOSPC would.
#include "runtime/errors.hpp"
#include "runtime/files.hpp"
#include "tests/support/file_size_limit.hpp"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace pedagogy;
namespace fs = std::filesystem;

using pedagogy::testing::file_size_limit;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir =
    fs::temp_directory_path() / ("pedagogy_files_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace

TEST_CASE("an appended line that does not fit is cut back, and the error names the file") {
  const auto path = scratch("append") / "dialogs.jsonl";
  files::line_appender out(path);
  out.append(R"({"step":0})");
  const std::string long_line(300, 'x');
  {
    file_size_limit limit(100);
    try {
      out.append(long_line);
      FAIL("the append should have failed");
    } catch (const files::write_error& e) {
      CHECK(std::string(e.what()).find("dialogs.jsonl") != std::string::npos);
    }
  }
  CHECK(read(path) == "{\"step\":0}\n"); // nothing of the failed line
  out.append(R"({"step":1})");
  out.close();
  CHECK(read(path) == "{\"step\":0}\n{\"step\":1}\n");
}

TEST_CASE("a failed atomic write keeps the old file whole") {
  const auto path = scratch("atomic") / "config.toml";
  files::write_atomically(path, "old = 1\n");
  {
    file_size_limit limit(64);
    CHECK_THROWS_AS(files::write_atomically(path, std::string(1000, '#')), files::write_error);
  }
  CHECK(read(path) == "old = 1\n");
  CHECK_FALSE(fs::exists(path.string() + ".tmp"));
  files::write_atomically(path, "new = 2\n");
  CHECK(read(path) == "new = 2\n");
}

TEST_CASE("an owner-only atomic write gives an owner-only file, even over a stale temporary") {
  const auto dir = scratch("private");
  const auto owner_rw = fs::perms::owner_read | fs::perms::owner_write;
  files::write_atomically(dir / "key.pem", "secret\n", owner_rw);
  CHECK((fs::status(dir / "key.pem").permissions() & fs::perms::mask) == owner_rw);
  // A temporary left world-readable by a crash is narrowed before the secret goes in.
  { std::ofstream(dir / "again.pem.tmp") << "stale"; }
  fs::permissions(dir / "again.pem.tmp", files::default_permissions);
  files::write_atomically(dir / "again.pem", "secret\n", owner_rw);
  CHECK((fs::status(dir / "again.pem").permissions() & fs::perms::mask) == owner_rw);
  CHECK(read(dir / "again.pem") == "secret\n");
}

TEST_CASE("a partial last line left by a crash is dropped when the file is opened again") {
  const auto path = scratch("partial") / "metrics.jsonl";
  { std::ofstream(path) << "{\"step\":0}\n{\"step\":1}\n{\"st"; }
  CHECK(files::drop_partial_last_line(path) == 4);
  CHECK(read(path) == "{\"step\":0}\n{\"step\":1}\n");
  CHECK(files::drop_partial_last_line(path) == 0);
  { std::ofstream(path, std::ios::app) << "no newline at all"; }
  files::line_appender again(path);
  again.append("{\"step\":2}");
  again.close();
  CHECK(read(path) == "{\"step\":0}\n{\"step\":1}\n{\"step\":2}\n");
}

TEST_CASE("whole lines are read with their numbers, and a line cut short is left out") {
  const auto path = scratch("whole") / "records.jsonl";
  std::vector<std::pair<std::string, int64_t>> seen;
  auto collect = [&](const std::string& line, int64_t number) {
    seen.emplace_back(line, number);
  };
  files::for_each_whole_line(path, collect); // absent: no lines, no error
  CHECK(seen.empty());
  { std::ofstream(path) << "a\n\nc\n{\"cut"; }
  files::for_each_whole_line(path, collect);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0] == std::pair<std::string, int64_t>{"a", 1});
  CHECK(seen[1] == std::pair<std::string, int64_t>{"", 2}); // blank lines count
  CHECK(seen[2] == std::pair<std::string, int64_t>{"c", 3});
  seen.clear();
  { std::ofstream(path, std::ios::app) << "\n"; } // the last line is now whole
  files::for_each_whole_line(path, collect);
  REQUIRE(seen.size() == 4);
  CHECK(seen[3] == std::pair<std::string, int64_t>{"{\"cut", 4});
}

TEST_CASE("appending to a folder that cannot be written is an error naming the path") {
  const auto dir = scratch("missing");
  CHECK_THROWS_AS(files::line_appender(dir / "no" / "such" / "folder.jsonl"), files::write_error);
}

namespace {

// What `body` threw as input_error, or a failed check.
template <class F>
std::string input_error_of(F&& body) {
  try {
    body();
  } catch (const input_error& e) {
    return e.what();
  }
  FAIL("expected an input_error");
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("reading refuses a FIFO, a folder and a file that fails its read, without blocking") {
  const auto dir = scratch("kinds");
  const auto fifo = dir / "config.toml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0); // no writer: opening it plainly would block
  CHECK(contains(input_error_of([&] { files::read_regular_file(fifo); }),
                 "is a FIFO (named pipe), not a regular file"));
  CHECK(contains(input_error_of([&] { files::for_each_whole_line(fifo, [](auto&, int64_t) {}); }),
                 "FIFO"));
  CHECK(contains(input_error_of([&] { files::read_regular_file(dir); }), "is a folder"));
  CHECK(contains(input_error_of([&] { files::read_regular_file("/dev/zero"); }), "is a device"));
  // "Regular" to stat, but its first read fails: never taken for an empty file.
  CHECK(contains(input_error_of([&] { files::read_regular_file("/proc/self/mem"); }),
                 "reading failed"));
  CHECK(
    contains(input_error_of([&] { files::read_regular_file(dir / "absent"); }), "cannot read it"));
}

TEST_CASE("a reader gives lines without their ends, and says which last line was cut short") {
  const auto path = scratch("reader") / "problems.jsonl";
  const std::string big(200'000, 'x'); // longer than one read
  { std::ofstream(path) << "a\r\n\n" << big << "\nlast"; }
  files::reader in(path);
  std::string line;
  bool whole = false;
  REQUIRE(in.next_line(line, &whole));
  CHECK(line == "a");
  CHECK(whole);
  REQUIRE(in.next_line(line, &whole));
  CHECK(line.empty());
  REQUIRE(in.next_line(line, &whole));
  CHECK(line == big);
  REQUIRE(in.next_line(line, &whole));
  CHECK(line == "last");
  CHECK_FALSE(whole);
  CHECK_FALSE(in.next_line(line, &whole));
  CHECK(files::read_regular_file(path) == "a\r\n\n" + big + "\nlast");
}

TEST_CASE("an output that is a FIFO or a device is refused, never replaced or written into") {
  const auto dir = scratch("outputs");
  const auto fifo = dir / "out.jsonl";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_AS(files::write_atomically(fifo, "x\n"), files::write_error);
  CHECK(fs::is_fifo(fifo)); // still the FIFO, not a regular file renamed over it
  CHECK_THROWS_AS(files::line_appender{fifo}, files::write_error); // and no blocking open
  CHECK(fs::is_fifo(fifo));
  CHECK(contains(input_error_of([&] { files::require_regular_output(fifo); }), "FIFO"));
  CHECK(
    contains(input_error_of([&] { files::require_regular_output("/dev/full"); }), "is a device"));
  CHECK_NOTHROW(files::require_regular_output(dir / "new.jsonl"));
  CHECK(fs::is_character_file("/dev/full"));
}

TEST_CASE("a second writer of the same file is refused, and cuts nothing of the first one's") {
  const auto path = scratch("lock") / "dialogs.jsonl";
  files::line_appender first(path);
  first.append("{\"step\":0}");
  // The first writer is in the middle of a line (as a process between two write() calls).
  { std::ofstream(path, std::ios::app) << "{\"ste"; }
  CHECK(contains(input_error_of([&] { files::line_appender second(path); }), "another process"));
  CHECK(read(path) == "{\"step\":0}\n{\"ste"); // its partial line is still there
  first.close();
  files::line_appender after(path); // free again; now the partial line is dropped
  CHECK(read(path) == "{\"step\":0}\n");
}

TEST_CASE("appending to a file that was deleted meanwhile fails instead of writing into nothing") {
  const auto dir = scratch("deleted");
  files::line_appender out(dir / "metrics.jsonl");
  out.append("{\"step\":0}");
  fs::remove_all(dir);
  CHECK_THROWS_AS(out.append("{\"step\":1}"), files::write_error);
}
