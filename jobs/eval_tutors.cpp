// The tutors an evaluation compares (see eval_tutors.hpp).
#include "jobs/eval_tutors.hpp"

#include "runtime/errors.hpp"

#include <fmt/format.h>

#include <cctype>
#include <filesystem>

namespace pedagogy::actors {

namespace fs = std::filesystem;

namespace {

bool plain_label(const std::string& label) {
  return !label.empty() && label != "." && label != ".." &&
         label.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                 "._-") == std::string::npos;
}

// Turns a path's components into a label: anything but letters, digits, '.', '_' and '-'
// becomes '_'.
std::string label_of(std::string text) {
  for (char& c : text)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      c = '_';
  return text;
}

} // namespace

std::string label_for_dir(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty())
    p = p.parent_path();
  std::string name = p.filename().string();
  if (name.starts_with("step-") && p.has_parent_path()) {
    auto run = p.parent_path();
    if (run.filename() == "checkpoints" && run.has_parent_path())
      run = run.parent_path();
    name = run.filename().string() + "-" + name;
  }
  return label_of(name);
}

std::string describe_model(const config::role_config& role) {
  return role.backend == config::backend_kind::openai
           ? fmt::format("{}@{}", role.openai.model.empty() ? role.model : role.openai.model,
                         role.openai.base_url)
           : role.model;
}

eval_tutor parse_tutor_spec(const std::string& spec, const config::role_config& base) {
  const std::string where = fmt::format("flag --tutor '{}'", spec);
  std::string label, target = spec;
  const auto at = spec.find('@');
  const auto eq = spec.find('=');
  if (eq != std::string::npos && (at == std::string::npos || eq < at)) {
    label = spec.substr(0, eq);
    target = spec.substr(eq + 1);
    if (!plain_label(label))
      throw input_error(where, fmt::format("the label '{}' is not a plain name", label),
                        "use letters, digits, '.', '_' and '-'; it names the row and a folder");
  }
  if (target.empty())
    throw input_error(where, "no model after the label",
                      "give a model directory or SERVED_NAME@http://HOST:PORT/v1");
  eval_tutor t{label, base};
  t.role.init.clear(); // a tutor under test must exist
  const auto at_target = target.find('@');
  if (at_target != std::string::npos) {
    const auto name = target.substr(0, at_target), url = target.substr(at_target + 1);
    if (name.empty() || !(url.starts_with("http://") || url.starts_with("https://")))
      throw input_error(where, "an endpoint is SERVED_NAME@http(s)://HOST:PORT/v1",
                        "e.g. Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1");
    t.role.backend = config::backend_kind::openai;
    t.role.model = name;
    t.role.openai.model = name;
    t.role.openai.base_url = url;
    if (t.label.empty())
      t.label = label_of(fs::path(name).filename().string());
  } else {
    t.role.backend = config::backend_kind::engine;
    t.role.model = target;
    t.role.openai = {};
    if (t.label.empty())
      t.label = label_for_dir(target);
  }
  if (!plain_label(t.label))
    throw input_error(where, "no usable label can be derived", "give one: LABEL=MODEL");
  return t;
}

} // namespace pedagogy::actors
