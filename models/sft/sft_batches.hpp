// The order of supervised fine-tuning: which examples go into which row, micro-batch and
// optimizer step of an epoch. Pure and seeded (runtime/seeds.hpp), so a resumed run sees the
// same order as one that never stopped.
//
//   packed:   the epoch's examples in a seeded order are placed first-fit into rows of at most
//             `max_length` tokens (attention never crosses from one example to the next, see
//             models/sft/sft.hpp); `micro_batch_size` rows make a micro-batch.
//   buckets:  (pack = false) the examples sorted by length, after a seeded shuffle that breaks
//             ties, are cut into micro-batches of `micro_batch_size` examples of similar length
//             (little padding), whose order is then shuffled.
//
// `gradient_accumulation` consecutive micro-batches make one optimizer step; the last step of an
// epoch may have fewer.
#pragma once

#include "models/sft/sft_examples.hpp"

#include <cstdint>
#include <vector>

namespace pedagogy::models {

// Indices into the example list: one row each (packed), or one example per row (buckets).
struct sft_micro_batch {
  std::vector<std::vector<size_t>> rows;
};

struct sft_plan_options {
  bool pack = true;
  int64_t max_length = 4096; // tokens per packed row
  int64_t micro_batch_size = 1;
  int64_t gradient_accumulation = 1;
  uint64_t seed = 0;
  bool shuffle = true; // false keeps file order (validation)
};

// The micro-batches of `epoch`, in order.
std::vector<sft_micro_batch> plan_epoch(const std::vector<sft_example>& examples,
                                        const sft_plan_options& options, int64_t epoch);

// One optimizer step: its epoch and its micro-batches.
struct sft_step_plan {
  int64_t epoch = 0;
  std::vector<sft_micro_batch> micro_batches;
};

// Every optimizer step of `epochs` epochs, in order (epochs may differ in length: first-fit
// packing in another order can need another number of rows).
std::vector<sft_step_plan> plan_steps(const std::vector<sft_example>& examples,
                                      const sft_plan_options& options, int64_t epochs);

// Holds out a seeded `fraction` of `examples` for validation (at least one when the fraction is
// positive; at least one is kept for training), both parts in file order.
struct sft_split {
  std::vector<sft_example> train, val;
};
sft_split split_validation(std::vector<sft_example> examples, double fraction, uint64_t seed);

} // namespace pedagogy::models
