// Checkpoints on disk (see checkpoints.hpp).
#include "run/checkpoints.hpp"

#include "models/training/checkpoint_files.hpp"
#include "models/weights/safetensors.hpp"
#include "runtime/errors.hpp"
#include "runtime/files.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <regex>

namespace pedagogy::actors {

namespace fs = std::filesystem;

std::vector<checkpoint_entry> list_checkpoints(const fs::path& dir) {
  std::vector<checkpoint_entry> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return out;
  const std::regex name(R"(step-(\d+))");
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (entry.is_directory() && std::regex_match(file, m, name) &&
        fs::exists(entry.path() / "trainer_state.json"))
      out.push_back({std::stoll(m[1].str()), entry.path()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::string checkpoint_problem(const fs::path& dir) {
  try {
    for (const char* file : {"config.json", "trainer_state.json", "optimizer.safetensors"})
      if (!fs::is_regular_file(dir / file))
        return fmt::format("{}: missing", (dir / file).string());
    auto state =
      nlohmann::json::parse(files::read_regular_file(dir / "trainer_state.json"), nullptr, false);
    const auto where = (dir / "trainer_state.json").string();
    if (state.is_discarded() || !state.is_object() || !state.contains("step") ||
        !state["step"].is_number_integer() || !state.contains("weights_version") ||
        !state["weights_version"].is_number_integer())
      return fmt::format("{}: not a trainer state (an integer step and weights_version)", where);
    // The folder's name says which step it holds; a state that disagrees was copied or edited.
    std::smatch m;
    const std::string name = dir.filename().string();
    if (std::regex_match(name, m, std::regex(R"(step-(\d+))")) &&
        state["step"].get<int64_t>() != std::stoll(m[1].str()))
      return fmt::format("{}: step {} in the folder of step {}", where,
                         state["step"].get<int64_t>(), std::stoll(m[1].str()));
    // Opening validates every header against the file's size: a truncated file fails here.
    models::checkpoint_reader::open(dir);
    models::optimizer_files(dir, "resume from an earlier checkpoint"); // and every shard
    return "";
  } catch (const input_error& e) {
    return fmt::format("{}: {}", e.where(), e.problem());
  } catch (const std::exception& e) {
    return e.what();
  }
}

fs::path checkpoint_dir(const fs::path& dir, int64_t step) {
  return dir / fmt::format("step-{:06d}", step);
}

fs::path checkpoint_tmp_dir(const fs::path& dir, int64_t step) {
  return dir / fmt::format("step-{:06d}.tmp", step);
}

namespace {

constexpr const char* marker_name = ".pedagogy-checkpoint";

// Refuses to let anything but one of our checkpoint folders go at `path`.
void require_ours_or_absent(const fs::path& path) {
  std::error_code ec;
  if (fs::symlink_status(path, ec).type() == fs::file_type::not_found)
    return;
  if (!is_our_checkpoint(path))
    throw files::write_error(path, fmt::format("exists and was not written by pedagogy (it has no "
                                               "{}), so it is not replaced; move it away",
                                               marker_name));
}

// Whether `inner` is `outer` or lies inside it, both resolved (links, "..") first.
bool within(const fs::path& inner, const fs::path& outer) {
  std::error_code ec;
  const fs::path i = fs::weakly_canonical(fs::absolute(inner), ec);
  const fs::path o = fs::weakly_canonical(fs::absolute(outer), ec);
  auto at = i.begin();
  for (auto part = o.begin(); part != o.end(); ++part, ++at)
    if (part->empty())
      continue;
    else if (at == i.end() || *at != *part)
      return false;
  return true;
}

} // namespace

bool is_our_checkpoint(const fs::path& path) {
  std::error_code ec;
  return fs::symlink_status(path, ec).type() == fs::file_type::directory &&
         fs::symlink_status(path / marker_name, ec).type() == fs::file_type::regular;
}

fs::path begin_checkpoint(const fs::path& dir, int64_t step) {
  const fs::path tmp = checkpoint_tmp_dir(dir, step);
  require_ours_or_absent(tmp);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  files::write_atomically(tmp / marker_name,
                          nlohmann::json{{"written_by", "pedagogy"}, {"step", step}}.dump() + "\n");
  return tmp;
}

fs::path finish_checkpoint(const fs::path& tmp, const std::string& trainer_state_json) {
  files::write_atomically(tmp / "trainer_state.json", trainer_state_json);
  fs::path final_dir = tmp;
  final_dir.replace_extension(); // step-000123.tmp -> step-000123
  require_ours_or_absent(final_dir);
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  return final_dir;
}

void prune_checkpoints(const fs::path& dir, int64_t keep, const std::vector<fs::path>& in_use) {
  if (keep <= 0)
    return;
  auto found = list_checkpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < found.size(); ++i) {
    const fs::path& old = found[i].dir;
    const bool used = std::any_of(in_use.begin(), in_use.end(), [&](const fs::path& model) {
      return !model.empty() && within(model, old);
    });
    if (is_our_checkpoint(old) && !used)
      fs::remove_all(old);
  }
}

int64_t remove_temporaries(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return 0;
  const std::regex name(R"(step-\d+\.tmp)");
  std::vector<fs::path> doomed;
  for (const auto& entry : fs::directory_iterator(dir))
    if (std::regex_match(entry.path().filename().string(), name) && is_our_checkpoint(entry.path()))
      doomed.push_back(entry.path());
  for (const auto& path : doomed)
    fs::remove_all(path);
  return static_cast<int64_t>(doomed.size());
}

} // namespace pedagogy::actors
