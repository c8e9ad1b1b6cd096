// Writing files as if the disk could fill up at any moment, because it can.
//
// A write that fails stops the job (exit 1) with a `write_error` naming the file and the system's
// reason; nothing is reported as written that is not on disk. Whole files are replaced atomically
// (temporary file, fsync, rename, fsync of the folder), so a reader sees the old content or the
// new one, never a mix. JSONL files grow one whole line at a time: a line that does not fit is cut
// back to where it began, so a later `--resume` never reads half a record.
#pragma once

#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pedagogy::files {

// rw-r--r--: what files are created with unless a caller asks for less.
inline constexpr std::filesystem::perms default_permissions =
  std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
  std::filesystem::perms::group_read | std::filesystem::perms::others_read;

// A write, flush, sync or close of `path` failed.
class write_error : public std::runtime_error {
public:
  write_error(const std::filesystem::path& path, const std::string& what);

  const std::filesystem::path& path() const noexcept {
    return path_;
  }

private:
  std::filesystem::path path_;
};

// Replaces `path` with `content`: the old file stays intact unless the new one is complete on disk.
// `permissions` are those the new file is created with (less the umask), so a secret written with
// owner_read | owner_write is never readable by others, not even while it is being written.
void write_atomically(const std::filesystem::path& path, std::string_view content,
                      std::filesystem::perms permissions = default_permissions);
// The same with the content in pieces, written in order (a header, then tensor buffers).
void write_atomically(const std::filesystem::path& path,
                      const std::vector<std::string_view>& pieces,
                      std::filesystem::perms permissions = default_permissions);

// Appends whole lines to one file. Each append() writes one line and its '\n', or leaves the file
// as it was and throws. One writer per file (the run folder's lock makes sure of that).
class line_appender {
public:
  line_appender() = default;
  // Opens (creating) `path` for appending. A last line without its '\n', left by a process that
  // died mid-write, is cut off first.
  explicit line_appender(std::filesystem::path path);
  line_appender(line_appender&& other) noexcept;
  line_appender& operator=(line_appender&& other) noexcept;
  line_appender(const line_appender&) = delete;
  line_appender& operator=(const line_appender&) = delete;
  ~line_appender(); // closes without checking: call close() where the result matters

  bool is_open() const noexcept {
    return fd_ >= 0;
  }
  const std::filesystem::path& path() const noexcept {
    return path_;
  }

  // Takes an exclusive advisory lock (flock) on the file for as long as it is open; false when
  // another process holds one, so two writers of the same output can refuse instead of mixing.
  bool try_lock();
  // Empties the file (after try_lock(), so a running writer's lines are never cut).
  void truncate();
  // `line` must not contain '\n'.
  void append(std::string_view line);
  // Makes every appended line durable (fsync).
  void sync();
  // Syncs and closes, checking both.
  void close();

private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// Calls `line(text, number)` for every line of `path` that ends in '\n' (numbers from 1; blank
// lines included), leaving out a last line cut short by an interrupted write. An absent file has
// no lines; a read error throws std::runtime_error naming the file.
void for_each_whole_line(const std::filesystem::path& path,
                         const std::function<void(const std::string&, int64_t)>& line);

// Cuts a last line that lacks its '\n' off `path` (no-op when the file is absent or whole).
// Returns the number of bytes removed.
size_t drop_partial_last_line(const std::filesystem::path& path);

} // namespace pedagogy::files
