// Checked, atomic and line-whole file writes (see files.hpp).
#include "runtime/files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace pedagogy::files {

namespace {

namespace fs = std::filesystem;

std::string reason(int error) {
  std::string text = std::strerror(error);
  if (error == ENOSPC || error == EDQUOT)
    text += " (hint: free space on that disk, or point the output somewhere else)";
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

} // namespace

write_error::write_error(const fs::path& path, const std::string& what)
  : std::runtime_error(fmt::format("{}: {}", path.string(), what)), path_(path) {}

void write_atomically(const fs::path& path, std::string_view content, fs::perms permissions) {
  write_atomically(path, std::vector<std::string_view>{content}, permissions);
}

void write_atomically(const fs::path& path, const std::vector<std::string_view>& pieces,
                      fs::perms permissions) {
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
  drop_partial_last_line(path_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw write_error(path_, fmt::format("cannot open for appending: {}", reason(errno)));
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

bool line_appender::try_lock() {
  return fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) == 0;
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
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return;
  std::string text;
  int64_t number = 0;
  while (std::getline(in, text)) {
    if (in.eof())
      break; // no '\n' after it: a line cut short by a crash
    line(text, ++number);
  }
  if (in.bad())
    throw std::runtime_error(fmt::format("{}: reading failed", path.string()));
}

} // namespace pedagogy::files
