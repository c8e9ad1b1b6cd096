// Faults that tests inject into a real job, where no input can cause them any more.
//
// PEDAGOGY_FAULT_INJECT holds a comma-separated list of fault names; a job asks
// fault_injected("name") at the one place each fault is made. Only tests set it: the job-level
// paths it exercises (a non-finite loss stopping a run) must keep working although the config's
// ranges now refuse every value that once produced them.
//
//   non_finite_advantage   every learning batch carries a NaN advantage (the trainer), as an
//                          overflowing reward or KL weight would make it
#pragma once

#include <string_view>

namespace pedagogy::faults {

bool fault_injected(std::string_view name);

} // namespace pedagogy::faults
