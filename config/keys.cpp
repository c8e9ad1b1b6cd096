// Lists the schema's keys, looks one up, and finds the one a misspelt key most likely meant.
#include "config/config.hpp"
#include "config/fields.hpp"
#include "runtime/errors.hpp"

#include <algorithm>
#include <optional>
#include <type_traits>

namespace pedagogy::config {

namespace {

struct key_lister {
  std::string prefix;
  std::vector<std::string>* out;

  template <class T>
  void field(std::string_view name, T&, const knob&) {
    out->push_back(prefix + std::string(name));
  }
  template <class S>
  void table(std::string_view name, S& sub) {
    out->push_back(prefix + std::string(name));
    key_lister inner{prefix + std::string(name) + ".", out};
    describe(inner, sub);
  }
};

// Finds the knob of one dotted key (a copy: describe() passes knobs as temporaries).
struct knob_finder {
  std::string_view path;
  std::string prefix;
  std::optional<knob> found;
  bool integer = false;

  template <class T>
  void field(std::string_view name, T&, const knob& k) {
    if (prefix + std::string(name) != path)
      return;
    found = k;
    integer = std::is_same_v<T, int64_t>;
  }
  template <class S>
  void table(std::string_view name, S& sub) {
    std::string inner = prefix + std::string(name) + ".";
    if (path.substr(0, inner.size()) != inner)
      return;
    std::swap(prefix, inner);
    describe(*this, sub);
    std::swap(prefix, inner);
  }
};

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string_view last_component(std::string_view path) {
  auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

} // namespace

std::vector<std::string> key_paths() {
  std::vector<std::string> out;
  config defaults;
  key_lister lister{"", &out};
  describe(lister, defaults);
  return out;
}

integer_range range_of(std::string_view key) {
  config defaults;
  knob_finder finder{key, "", std::nullopt, false};
  describe(finder, defaults);
  PEDAGOGY_CHECK(finder.found && finder.integer, "'{}' is not an integer key", key);
  return {finder.found->min, finder.found->max};
}

std::string nearest_key(std::string_view unknown) {
  // Knobs of the Python reference (classroom.md §5) under their new names, for people who
  // bring their old settings along.
  static constexpr std::pair<std::string_view, std::string_view> reference_names[] = {
    {"max_turns", "classroom.max_tutor_turns"},
    {"extra_penalty_for_rejected_judges", "classroom.rejection_penalty"},
    {"forced_conversation_type", "classroom.type"},
    {"judges_rules_prompts_paths", "classroom.judge_rules"},
    {"student_personas_prompts_paths", "classroom.personas"},
    {"num_samples_per_problem", "train.samples_per_problem"},
    {"number_of_problems_per_batch", "train.problems_per_step"},
    {"per_device_train_batch_size", "train.micro_batch_size"},
    {"lr_scheduler_type", "train.schedule"},
    {"model_name_or_path", "model"}, // no dot: same table as the unknown key
    {"max_length", "max_context"},
    {"max_num_seqs", "max_batch_sequences"},
    {"save_dir", "logging.run_dir"},
    {"save_steps", "checkpoint.every_steps"},
  };
  const std::string_view leaf = last_component(unknown);
  const std::string_view parent = unknown.substr(0, unknown.size() - leaf.size());
  for (const auto& [old_name, new_name] : reference_names)
    if (leaf == old_name)
      return new_name.find('.') == std::string_view::npos
               ? std::string(parent) + std::string(new_name)
               : std::string(new_name);

  std::string best;
  size_t best_score = std::string::npos;
  for (const auto& candidate : key_paths()) {
    std::string_view c = candidate;
    const std::string_view c_leaf = last_component(c);
    const std::string_view c_parent = c.substr(0, c.size() - c_leaf.size());
    size_t score = 0;
    if (c_parent == parent)
      score = edit_distance(leaf, c_leaf);
    else if (c_leaf == leaf)
      score = 1; // the right key in the wrong table ("classroom.seed" for "train.seed")
    else
      score = edit_distance(unknown, c);
    if (score < best_score) {
      best_score = score;
      best = candidate;
    }
  }
  const size_t tolerance = std::max<size_t>(2, leaf.size() / 3);
  return best_score <= tolerance ? best : std::string{};
}

} // namespace pedagogy::config
