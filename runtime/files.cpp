// Checked, atomic and line-whole file writes (see files.hpp).
#include "runtime/files.hpp"

#include "runtime/errors.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pedagogy::files {

namespace {

namespace fs = std::filesystem;

std::string reason(int error) {
  std::string text = std::strerror(error);
  if (error == ENOSPC || error == EDQUOT)
    text += " (hint: free space on that disk, or point the output somewhere else)";
  else if (error == ENOENT || error == ENOTDIR)
    text += " (hint: create the folder it goes into first)";
  else if (error == EACCES || error == EPERM || error == EROFS)
    text += " (hint: write somewhere you may write, or change the folder's permissions)";
  return text;
}

// Writes all of `data` to `fd`, retrying short writes and EINTR; returns 0 or the errno.
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// The folder's entry for a renamed file is only durable once the folder itself is synced.
void sync_folder(const fs::path& file) {
  const fs::path folder = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return; // some file systems cannot open folders; the rename itself has happened
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0 && error != EINVAL && error != EROFS)
    throw write_error(folder, fmt::format("syncing the folder failed: {}", reason(error)));
}

// Reads this much at a time: large enough that a problem set or dialogs file takes few calls.
constexpr size_t read_chunk = size_t{1} << 16;

} // namespace

std::string describe_file_type(fs::file_type type) {
  switch (type) {
    case fs::file_type::regular:
      return "a regular file";
    case fs::file_type::directory:
      return "a folder";
    case fs::file_type::fifo:
      return "a FIFO (named pipe)";
    case fs::file_type::socket:
      return "a socket";
    case fs::file_type::character:
    case fs::file_type::block:
      return "a device";
    case fs::file_type::symlink:
      return "a symbolic link";
    case fs::file_type::not_found:
      return "missing";
    default:
      return "not a regular file";
  }
}

namespace {

fs::file_type type_of(mode_t mode) {
  if (S_ISREG(mode))
    return fs::file_type::regular;
  if (S_ISDIR(mode))
    return fs::file_type::directory;
  if (S_ISFIFO(mode))
    return fs::file_type::fifo;
  if (S_ISSOCK(mode))
    return fs::file_type::socket;
  if (S_ISCHR(mode))
    return fs::file_type::character;
  if (S_ISBLK(mode))
    return fs::file_type::block;
  return fs::file_type::unknown;
}

// Throws write_error when `path` exists and is not a regular file (following symbolic links).
void refuse_unless_regular(const fs::path& path, const char* verb) {
  std::error_code ec;
  const auto type = fs::status(path, ec).type();
  if (type != fs::file_type::not_found && type != fs::file_type::regular && !ec)
    throw write_error(path, fmt::format("is {}, not a regular file: refusing to {} it",
                                        describe_file_type(type), verb));
}

} // namespace

reader::reader(const fs::path& path, std::string hint) : path_(path), hint_(std::move(hint)) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. It has no effect on
  // a regular file, the only kind read past the fstat below.
  fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0)
    throw input_error(path_.string(), fmt::format("cannot read it: {}", std::strerror(errno)),
                      hint_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int error = errno;
    ::close(fd_);
    throw input_error(path_.string(), fmt::format("cannot inspect: {}", std::strerror(error)),
                      hint_);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw input_error(
      path_.string(),
      fmt::format("is {}, not a regular file", describe_file_type(type_of(st.st_mode))), hint_);
  }
}

reader::~reader() {
  if (fd_ >= 0)
    ::close(fd_);
}

bool reader::fill() {
  if (end_)
    return false;
  if (at_ > 0) {
    buffer_.erase(0, at_);
    at_ = 0;
  }
  const size_t old = buffer_.size();
  buffer_.resize(old + read_chunk);
  ssize_t n;
  do
    n = ::read(fd_, buffer_.data() + old, read_chunk);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    const int error = errno;
    buffer_.resize(old);
    throw input_error(path_.string(), fmt::format("reading failed: {}", std::strerror(error)),
                      hint_);
  }
  buffer_.resize(old + static_cast<size_t>(n));
  end_ = n == 0;
  return n > 0;
}

bool reader::next_line(std::string& line, bool* whole) {
  size_t scanned = at_;
  for (;;) {
    const size_t newline = buffer_.find('\n', scanned);
    if (newline != std::string::npos) {
      size_t end = newline;
      if (end > at_ && buffer_[end - 1] == '\r')
        --end;
      line.assign(buffer_, at_, end - at_);
      at_ = newline + 1;
      if (whole != nullptr)
        *whole = true;
      return true;
    }
    scanned = buffer_.size() - at_; // fill() moves the unread part to the front
    if (!fill()) {
      if (at_ >= buffer_.size())
        return false;
      line.assign(buffer_, at_, std::string::npos);
      if (!line.empty() && line.back() == '\r')
        line.pop_back();
      at_ = buffer_.size();
      if (whole != nullptr)
        *whole = false;
      return true;
    }
  }
}

std::string reader::rest() {
  while (fill()) {
  }
  std::string out = buffer_.substr(at_);
  at_ = buffer_.size();
  return out;
}

std::string read_regular_file(const fs::path& path, const std::string& hint) {
  return reader(path, hint).rest();
}

void require_regular_output(const fs::path& path, const std::string& hint) {
  std::error_code ec;
  const auto status = fs::status(path, ec); // follows symbolic links
  if (status.type() == fs::file_type::not_found || status.type() == fs::file_type::regular)
    return;
  if (ec)
    throw input_error(path.string(), fmt::format("cannot inspect: {}", ec.message()), hint);
  throw input_error(path.string(),
                    fmt::format("is {}, not a regular file: refusing to write over it",
                                describe_file_type(status.type())),
                    hint.empty() ? "choose a new file name or an existing regular file" : hint);
}

write_error::write_error(const fs::path& path, const std::string& what)
  : std::runtime_error(fmt::format("{}: {}", path.string(), what)), path_(path) {}

void write_atomically(const fs::path& path, std::string_view content, fs::perms permissions) {
  write_atomically(path, std::vector<std::string_view>{content}, permissions);
}

void write_atomically(const fs::path& path, const std::vector<std::string_view>& pieces,
                      fs::perms permissions) {
  // The rename below would replace a device node or a FIFO with a regular file and report success.
  refuse_unless_regular(path, "replace");
  const fs::path tmp = path.string() + ".tmp";
  const auto mode = static_cast<mode_t>(permissions & fs::perms::mask);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    throw write_error(tmp, fmt::format("cannot create: {}", reason(errno)));
  int error = 0;
  // A temporary file left by a crash keeps its old mode: narrow it before anything is written.
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    error = errno;
  else if ((st.st_mode & ~mode & 07777) != 0 && ::fchmod(fd, st.st_mode & mode & 07777) != 0)
    error = errno;
  for (size_t i = 0; i < pieces.size() && error == 0; ++i)
    error = write_all(fd, pieces[i]);
  if (error == 0 && ::fsync(fd) != 0)
    error = errno;
  if (::close(fd) != 0 && error == 0)
    error = errno;
  if (error != 0) {
    ::unlink(tmp.c_str());
    throw write_error(path, fmt::format("writing failed: {}", reason(error)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    error = errno;
    ::unlink(tmp.c_str());
    throw write_error(path, fmt::format("replacing the file failed: {}", reason(error)));
  }
  sync_folder(path);
}

line_appender::line_appender(fs::path path) : path_(std::move(path)) {
  refuse_unless_regular(path_, "append to");
  // O_NONBLOCK: a FIFO put in the file's place since the check would otherwise block the open
  // until a reader came; the fstat then refuses it.
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw write_error(path_, fmt::format("cannot open for appending: {}", reason(errno)));
  struct stat st {};
  const int error = ::fstat(fd_, &st) != 0 ? errno : 0;
  if (error != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    fd_ = -1;
    throw write_error(path_, error != 0
                               ? fmt::format("cannot inspect: {}", reason(error))
                               : fmt::format("is {}, not a regular file: refusing to append to it",
                                             describe_file_type(type_of(st.st_mode))));
  }
  // The lock comes before anything changes the file: a live writer's half-written last line is
  // not this process's to cut.
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    throw input_error(path_.string(),
                      "another process (a pedagogy train, rollout or eval) is writing this file",
                      "wait for it to finish, stop it, or choose another output");
  }
  ::fcntl(fd_, F_SETFL, O_APPEND); // plain blocking writes from here on
  drop_partial_last_line(path_);
}

line_appender::line_appender(line_appender&& other) noexcept
  : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

line_appender& line_appender::operator=(line_appender&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0)
      ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

line_appender::~line_appender() {
  if (fd_ >= 0)
    ::close(fd_);
}

void line_appender::truncate() {
  if (fd_ >= 0 && ::ftruncate(fd_, 0) != 0)
    throw write_error(path_, fmt::format("cannot empty the file: {}", reason(errno)));
}

void line_appender::append(std::string_view line) {
  if (fd_ < 0)
    throw write_error(path_, "appending to a closed file");
  struct stat before {};
  if (::fstat(fd_, &before) != 0)
    throw write_error(path_, fmt::format("cannot stat: {}", reason(errno)));
  // Writes to a file that was deleted (or whose folder was) succeed into an inode nobody can
  // reach: what the job reports as written would be gone.
  if (before.st_nlink == 0)
    throw write_error(path_, "the file was deleted while being written (was its folder removed?); "
                             "what it held is lost");
  std::string whole;
  whole.reserve(line.size() + 1);
  whole.append(line);
  whole.push_back('\n');
  // One write() call for the whole line, so a concurrent reader rarely sees half of it; a
  // failure in the middle is cut back to the line's start.
  if (const int error = write_all(fd_, whole); error != 0) {
    const bool cut = ::ftruncate(fd_, before.st_size) == 0;
    throw write_error(path_, fmt::format("appending a line failed: {}{}", reason(error),
                                         cut ? "" : "; the partial line could not be removed"));
  }
}

void line_appender::sync() {
  if (fd_ >= 0 && ::fsync(fd_) != 0)
    throw write_error(path_, fmt::format("syncing failed: {}", reason(errno)));
}

void line_appender::close() {
  if (fd_ < 0)
    return;
  const int fd = fd_;
  fd_ = -1;
  int error = ::fsync(fd) != 0 ? errno : 0;
  if (::close(fd) != 0 && error == 0)
    error = errno;
  if (error != 0 && error != EINVAL)
    throw write_error(path_, fmt::format("closing failed: {}", reason(error)));
}

size_t drop_partial_last_line(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return 0; // absent (or unreadable: opening it for appending will say so)
  struct stat st {};
  size_t removed = 0;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    // Scan back from the end in blocks for the last '\n'.
    off_t end = st.st_size;
    off_t keep = 0;
    char buffer[4096];
    while (end > 0) {
      const off_t begin = end > static_cast<off_t>(sizeof buffer) ? end - sizeof buffer : 0;
      const ssize_t n = ::pread(fd, buffer, static_cast<size_t>(end - begin), begin);
      if (n <= 0)
        break;
      const void* found = ::memrchr(buffer, '\n', static_cast<size_t>(n));
      if (found != nullptr) {
        keep = begin + (static_cast<const char*>(found) - buffer) + 1;
        break;
      }
      end = begin;
    }
    if (keep < st.st_size) {
      if (::ftruncate(fd, keep) != 0) {
        const int error = errno;
        ::close(fd);
        throw write_error(path,
                          fmt::format("cannot remove a partial last line: {}", reason(error)));
      }
      removed = static_cast<size_t>(st.st_size - keep);
    }
  }
  ::close(fd);
  return removed;
}

void for_each_whole_line(const std::filesystem::path& path,
                         const std::function<void(const std::string&, int64_t)>& line) {
  std::error_code ec;
  if (fs::symlink_status(path, ec).type() == fs::file_type::not_found)
    return;
  reader in(path);
  std::string text;
  bool whole = false;
  int64_t number = 0;
  while (in.next_line(text, &whole) && whole) // a last line without '\n' was cut short by a crash
    line(text, ++number);
}

} // namespace pedagogy::files
