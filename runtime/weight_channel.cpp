// The local weight channel (see weight_channel.hpp).
#include "runtime/weight_channel.hpp"

#include "runtime/errors.hpp"

#include <ATen/ATen.h>

#include <map>

namespace pedagogy {

void local_weight_channel::offer(const named_tensors& source, int64_t version) {
  std::lock_guard guard{mutex_};
  source_ = source; // handles to the learner's tensors, not copies
  version_ = version;
}

void local_weight_channel::take(const named_tensors& target, int64_t version) {
  std::lock_guard guard{mutex_};
  PEDAGOGY_CHECK(version == version_, "weights version {} asked for, {} offered", version,
                 version_);
  std::map<std::string, const at::Tensor*> by_name;
  for (const auto& [name, t] : source_)
    by_name.emplace(name, &t);
  PEDAGOGY_CHECK(by_name.size() == target.size(), "{} tensors offered, {} to receive",
                 by_name.size(), target.size());
  at::NoGradGuard no_grad;
  for (const auto& [name, t] : target) {
    auto it = by_name.find(name);
    PEDAGOGY_CHECK(it != by_name.end() && it->second->sizes() == t.sizes(),
                   "weights: '{}' is missing or misshapen", name);
    t.copy_(*it->second); // casts dtype and moves between devices
  }
}

} // namespace pedagogy
