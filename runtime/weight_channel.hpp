// The weight channel (DESIGN §6): how the learner's new tutor weights reach every tutor
// generator after a GRPO step, as a protocol rather than files. The trainer announces version v;
// the learner root offers its parameters; every tutor generator takes them at an engine step
// boundary (copying into its own tensors, casting to its dtype) and reports v. The trainer does
// not start another learn() until every generator has reported, so the source is stable while
// it is read.
//
// This file has the interface and the `local` channel (one process: a copy between tensors);
// `mpi` and `nccl` implement the same two calls with bucketed broadcasts.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pedagogy {

using named_tensors = std::vector<std::pair<std::string, at::Tensor>>;

class weight_channel {
public:
  virtual ~weight_channel() = default;
  // Learner root: the parameters (by name) that version `version` is made of.
  virtual void offer(const named_tensors& source, int64_t version) = 0;
  // A generator: copies version `version` into its own tensors (same names and shapes, any
  // dtype or device). Throws when that version was not offered.
  virtual void take(const named_tensors& target, int64_t version) = 0;
  virtual std::string kind() const = 0;
};

// Same process: the generators copy straight from the learner's tensors.
class local_weight_channel : public weight_channel {
public:
  void offer(const named_tensors& source, int64_t version) override;
  void take(const named_tensors& target, int64_t version) override;
  std::string kind() const override {
    return "local";
  }

private:
  std::mutex mutex_;
  named_tensors source_;
  int64_t version_ = -1;
};

} // namespace pedagogy
