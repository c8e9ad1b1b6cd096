// The run folder's lock and the outputs --force may delete (see run_folder.hpp).
#include "run/run_folder.hpp"

#include "run/checkpoints.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>

namespace pedagogy::actors {

namespace {

namespace fs = std::filesystem;

constexpr const char* lock_name = ".pedagogy.lock";

// The files a run (`pedagogy train` or `pedagogy sft`) writes into logging.run_dir (and the
// temporary names they pass through), and `pedagogy plot RUN`'s picture of it.
bool is_run_output(const std::string& name) {
  static const std::set<std::string> outputs = {
    "metrics.jsonl", "dialogs.jsonl", "sft_metrics.jsonl", "pedagogy.log", "config.toml",
    "metrics.svg",   lock_name};
  for (const auto& output : outputs)
    if (name == output || name == output + ".tmp" || name == output + ".partial")
      return true;
  return false;
}

fs::path normal(const fs::path& p) {
  std::error_code ec;
  auto out = fs::weakly_canonical(fs::absolute(p), ec);
  return ec ? fs::absolute(p).lexically_normal() : out;
}

// True when `inner` is `outer` or lies inside it.
bool within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
    if (o->empty())
      continue;
    else if (i == inner.end() || *i != *o)
      return false;
  return true;
}

bool is_kept(const fs::path& entry, const std::vector<fs::path>& kept) {
  return std::any_of(kept.begin(), kept.end(), [&](const fs::path& k) { return within(k, entry); });
}

} // namespace

bool is_checkpoint_name(const std::string& name) {
  static const std::regex pattern(R"(step-\d+(\.tmp)?)");
  return std::regex_match(name, pattern);
}

namespace {

// The pid the lock file holds (its holder wrote it), or "unknown".
std::string lock_holder(int fd) {
  char buffer[32] = {};
  const ssize_t n = fd < 0 ? -1 : ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string holder = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "unknown";
  holder.erase(std::remove(holder.begin(), holder.end(), '\n'), holder.end());
  return holder;
}

[[noreturn]] void refuse_busy(const fs::path& dir, const std::string& holder) {
  throw input_error(dir.string(),
                    fmt::format("another pedagogy run (pid {}) is using this folder", holder),
                    "wait for it to finish, stop it, or choose another logging.run_dir");
}

} // namespace

run_lock::run_lock(const fs::path& dir) {
  const fs::path path = dir / lock_name;
  // The folder itself is locked too: a lock file removed by hand would otherwise let a second
  // run create a new one and lock that (and --force then wipe the live run's files). Where
  // folders cannot be locked (some network file systems), the lock file alone holds.
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ >= 0 && ::flock(dir_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(dir_fd_);
    dir_fd_ = -1;
    if (error == EWOULDBLOCK) {
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      const std::string holder = lock_holder(fd);
      if (fd >= 0)
        ::close(fd);
      refuse_busy(dir, holder);
    }
  }
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw input_error(path.string(),
                      fmt::format("cannot create the run's lock file: {}", std::strerror(errno)),
                      "check that logging.run_dir is a writable folder");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string holder = lock_holder(fd_);
    ::close(fd_);
    fd_ = -1;
    if (dir_fd_ >= 0)
      ::close(dir_fd_);
    dir_fd_ = -1;
    refuse_busy(dir, holder);
  }
  // The holder's pid, for the message above; the lock itself is the flock, not this text.
  const std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // Not fatal: the lock holds either way.
  }
}

run_lock::~run_lock() {
  if (fd_ >= 0)
    ::close(fd_); // releases the flock
  if (dir_fd_ >= 0)
    ::close(dir_fd_);
}

namespace {

// Every entry of the run's folders, sorted into this program's outputs and everything else
// (kept model folders, the lock and the folder holding the checkpoints are in neither).
struct survey {
  std::vector<fs::path> ours;
  std::vector<fs::path> foreign;
};

survey survey_run(const run_layout& layout) {
  std::vector<fs::path> kept;
  for (const auto& k : layout.kept)
    if (!k.empty())
      kept.push_back(normal(k));
  const fs::path run_dir = normal(layout.run_dir);
  const fs::path ckpt_dir = normal(layout.checkpoint_dir);
  survey out;
  auto scan = [&](const fs::path& dir, bool run_outputs, bool checkpoints) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      return;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const fs::path path = normal(entry.path());
      const std::string name = entry.path().filename().string();
      if (is_kept(path, kept) || name == lock_name)
        continue;
      if (run_outputs && within(ckpt_dir, path) && entry.is_directory())
        continue; // holds the checkpoint folder, surveyed on its own
      const bool output = run_outputs && is_run_output(name) && entry.is_regular_file();
      // A checkpoint is ours by its marker, not its name (a user's step-1/ is not).
      if (output || (checkpoints && is_checkpoint_name(name) && is_our_checkpoint(entry.path())))
        out.ours.push_back(entry.path());
      else
        out.foreign.push_back(entry.path());
    }
  };
  scan(run_dir, true, ckpt_dir == run_dir);
  if (ckpt_dir != run_dir)
    scan(ckpt_dir, false, true);
  return out;
}

} // namespace

std::vector<fs::path> foreign_entries(const run_layout& layout) {
  return survey_run(layout).foreign;
}

void clear_run_outputs(const run_layout& layout) {
  const auto found = survey_run(layout);
  const auto& foreign = found.foreign;
  if (!foreign.empty()) {
    std::string names;
    for (size_t i = 0; i < foreign.size() && i < 3; ++i)
      names += (i ? ", " : "") + foreign[i].string();
    if (foreign.size() > 3)
      names += fmt::format(" and {} more", foreign.size() - 3);
    throw input_error(
      foreign.front().parent_path().string(),
      fmt::format("--force refuses to start over here: the folder holds files this program did "
                  "not write ({})",
                  names),
      "point logging.run_dir (and checkpoint.dir) at a folder of its own, or move those files");
  }
  for (const auto& path : found.ours)
    fs::remove_all(path);
}

void keep_steps_before(const fs::path& path, int64_t step) {
  if (!fs::exists(path))
    return;
  std::ostringstream kept;
  files::for_each_whole_line(path, [&](const std::string& line, int64_t) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
        j["step"].get<int64_t>() < step)
      kept << line << '\n';
  });
  files::write_atomically(path, kept.str());
}

void refuse_models_in_checkpoints(const run_layout& layout) {
  const fs::path checkpoints = normal(layout.checkpoint_dir);
  for (const auto& model : layout.kept)
    if (!model.empty() && within(normal(model), checkpoints) && normal(model) != checkpoints)
      throw input_error(model.string(),
                        fmt::format("a role's model folder lies inside the checkpoint folder {}, "
                                    "which this run writes its step-N checkpoints into and prunes",
                                    layout.checkpoint_dir.string()),
                        "copy the model elsewhere first (cp -r), or give the run another "
                        "logging.run_dir or checkpoint.dir");
}

bool non_empty(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && fs::file_size(path, ec) > 0;
}

} // namespace pedagogy::actors
