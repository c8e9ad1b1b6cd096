// A run's checkpoints on disk: finding them, telling an intact one from a broken one, finishing
// one atomically, pruning old ones.
//
// A checkpoint is `<dir>/step-NNNNNN/`: a Hugging Face model directory plus optimizer.safetensors
// and trainer_state.json. It is written as `step-NNNNNN.tmp/` and renamed when complete, so a
// folder without the suffix was complete once; a later truncation (a full disk under someone
// else's write, a copy cut short) is caught by intact() and resume falls back to an older one.
//
// The first file of every checkpoint folder is a marker (`.pedagogy-checkpoint`): only a folder
// holding it is this program's to delete (pruning, --force, leftovers of a crash). A name alone
// proves nothing: a user's own `step-1/` or `step-3.tmp/` beside the checkpoints stays, and so
// does any folder a role loads its model from.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pedagogy::actors {

struct checkpoint_entry {
  int64_t step = 0;
  std::filesystem::path dir;
};

// The finished checkpoints in `dir`, oldest first (folders named step-N with trainer_state.json).
std::vector<checkpoint_entry> list_checkpoints(const std::filesystem::path& dir);

// "" when every file of the checkpoint is present and parses (weights and optimizer headers
// against their file sizes, trainer_state.json); else what is wrong, naming the file.
std::string checkpoint_problem(const std::filesystem::path& dir);

// Where the checkpoint of `step` is written before it is complete, and where it ends up.
std::filesystem::path checkpoint_tmp_dir(const std::filesystem::path& dir, int64_t step);
std::filesystem::path checkpoint_dir(const std::filesystem::path& dir, int64_t step);

// Creates the temporary folder of `step`'s checkpoint with its marker and returns it; one this
// program left there before is replaced. Throws write_error when that name is taken by a folder
// or file without the marker.
std::filesystem::path begin_checkpoint(const std::filesystem::path& dir, int64_t step);

// Whether `path` is a folder this program wrote as a checkpoint (it holds the marker).
bool is_our_checkpoint(const std::filesystem::path& path);

// Writes trainer_state.json into `tmp` and renames it to its final name (replacing a checkpoint
// of the same step, which only a resumed run that stopped early could have left; a folder of that
// name without the marker is refused, not replaced).
std::filesystem::path finish_checkpoint(const std::filesystem::path& tmp,
                                        const std::string& trainer_state_json);

// Removes all but the newest `keep` checkpoints (0 = keep all): only folders with the marker, and
// never one of `in_use` (the model folders the run's roles load, which may be a checkpoint).
void prune_checkpoints(const std::filesystem::path& dir, int64_t keep,
                       const std::vector<std::filesystem::path>& in_use);

// Removes the leftovers of interrupted checkpoint writes in `dir`: step-N.tmp folders with the
// marker. Returns how many were removed.
int64_t remove_temporaries(const std::filesystem::path& dir);

} // namespace pedagogy::actors
