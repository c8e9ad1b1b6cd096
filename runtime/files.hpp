// Reading only regular files, and writing files as if the disk could fill up at any moment,
// because it can.
//
// Every file the program reads (configs, problem sets, dialogs, model files) is opened without
// blocking and checked on the open descriptor: a FIFO would block the open, and the read, forever;
// a device never ends; a folder reads as nothing; /proc/self/mem fails its first read. Each is
// refused with an input_error naming the file.
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

// Opens `path` for reading when it is a regular file (checked on the opened descriptor, after
// following symbolic links), or throws input_error naming it; `hint` says what the person should
// point at. Read errors throw input_error too: a file that cannot be read whole is never taken for
// a shorter one.
class reader {
public:
  explicit reader(const std::filesystem::path& path, std::string hint = {});
  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;
  ~reader();

  // The next line without its '\n' (nor a '\r' before it); false at the end. `whole` says
  // whether the line ended in '\n' (a last line cut short by an interrupted write did not).
  bool next_line(std::string& line, bool* whole = nullptr);
  // Everything not read yet.
  std::string rest();

private:
  bool fill();

  std::filesystem::path path_;
  std::string hint_;
  int fd_ = -1;
  std::string buffer_;
  size_t at_ = 0;
  bool end_ = false;
};

// The whole of a regular file (see reader).
std::string read_regular_file(const std::filesystem::path& path, const std::string& hint = {});

// Throws input_error when `path` exists and is not a regular file (a device, a FIFO, a folder,
// a socket), so that an output never replaces or writes into one. A new path is fine.
void require_regular_output(const std::filesystem::path& path, const std::string& hint = {});

// "a FIFO (named pipe)", "a folder", ...: what a file type is called in messages.
std::string describe_file_type(std::filesystem::file_type type);

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
// A `path` that exists and is not a regular file is refused (write_error), never replaced.
// `permissions` are those the new file is created with (less the umask), so a secret written with
// owner_read | owner_write is never readable by others, not even while it is being written.
void write_atomically(const std::filesystem::path& path, std::string_view content,
                      std::filesystem::perms permissions = default_permissions);
// The same with the content in pieces, written in order (a header, then tensor buffers).
void write_atomically(const std::filesystem::path& path,
                      const std::vector<std::string_view>& pieces,
                      std::filesystem::perms permissions = default_permissions);

// Appends whole lines to one file. Each append() writes one line and its '\n', or leaves the file
// as it was and throws. One writer per file: each holds an exclusive advisory lock (flock) on it
// while it is open, so that a second writer of the same output (a rollout pointed at a live
// run's dialogs.jsonl) refuses instead of truncating or mixing it.
class line_appender {
public:
  line_appender() = default;
  // Opens (creating) `path` for appending and locks it; throws input_error when another process
  // holds the lock, and write_error when `path` is not a regular file or cannot be opened. A last
  // line without its '\n', left by a process that died mid-write, is cut off once locked.
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

  // Empties the file (it is locked: no other writer's lines are cut).
  void truncate();
  // `line` must not contain '\n'. Throws write_error when the file was deleted meanwhile.
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
// no lines; one that is not a regular file, or a read error, throws input_error naming the file.
void for_each_whole_line(const std::filesystem::path& path,
                         const std::function<void(const std::string&, int64_t)>& line);

// Cuts a last line that lacks its '\n' off `path` (no-op when the file is absent or whole).
// Returns the number of bytes removed.
size_t drop_partial_last_line(const std::filesystem::path& path);

} // namespace pedagogy::files
