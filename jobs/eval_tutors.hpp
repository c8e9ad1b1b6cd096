// The tutors an evaluation compares: a --tutor value read into a row label and [tutor] settings,
// and how a model is named in the table and the summary.
#pragma once

#include "config/schema.hpp"

#include <string>

namespace pedagogy::actors {

// A tutor to evaluate: its row label (also its folder under --out) and its [tutor] settings.
struct eval_tutor {
  std::string label;
  config::role_config role;
};

// A --tutor value on top of `base` (the config's [tutor]): "[LABEL=]MODEL_DIR" (our engine) or
// "[LABEL=]SERVED_NAME@http(s)://HOST:PORT/v1" (an OpenAI-compatible endpoint). The label
// defaults to the directory's last component (its last two for a checkpoint "step-N"), or the
// served name. Throws input_error for an empty part or a label that is not a plain name.
eval_tutor parse_tutor_spec(const std::string& spec, const config::role_config& base);

// A model directory's label: its last component, or for a checkpoint (runs/X/checkpoints/
// step-N) the run's name and the step.
std::string label_for_dir(const std::string& dir);

// A role's model as the table shows it: its directory, or its served name and endpoint.
std::string describe_model(const config::role_config& role);

} // namespace pedagogy::actors
