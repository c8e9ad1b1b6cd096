// Checked file writes: a line that does not fit is cut back whole, a failed atomic write keeps
// the old file, a partial last line left by a crash is dropped. RLIMIT_FSIZE stands in for a full
// disk: writes past the limit fail (EFBIG) exactly where ENOSPC would.
#include "runtime/files.hpp"

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace pedagogy;
namespace fs = std::filesystem;

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

// While alive, files of this process cannot grow past `bytes` (as if the disk were full there).
struct file_size_limit {
  rlimit before{};
  explicit file_size_limit(rlim_t bytes) {
    std::signal(SIGXFSZ, SIG_IGN); // a failed write, not a killed process
    ::getrlimit(RLIMIT_FSIZE, &before);
    rlimit limit = before;
    limit.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
  }
  ~file_size_limit() {
    ::setrlimit(RLIMIT_FSIZE, &before);
  }
};

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
