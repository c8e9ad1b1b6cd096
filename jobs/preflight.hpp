// What a job checks before it loads a model or writes a file: every mistake a person can make in
// a config that the disk, the network or another process can tell now, rather than after minutes
// of loading (a model folder that does not exist, a run folder that cannot be written, a port in
// use, an endpoint that is not up).
#pragma once

#include "config/schema.hpp"

#include <filesystem>
#include <string>

namespace pedagogy::actors {

// Throws input_error naming `key` unless `folder` is, or can be created as, a folder this
// process may write in. Creates nothing.
void check_writable_folder(const std::filesystem::path& folder, const std::string& key);

// Throws input_error naming inspect.port when live inspection is on and its port is taken.
void check_inspect_port(const config::inspect_config& inspect);

// One role's model: a folder with config.json (or one `init` may create) on a device this build
// can use, or a reachable endpoint. `name` names it in errors ("tutor", "student").
void check_role_before_loading(const config::role_config& role, const std::string& name);

// The models of every role a classroom runs: a folder with config.json (or one `init` may
// create) on a device this build can use, or a reachable endpoint.
void check_roles_before_loading(const config::config& cfg);

// The checks of a training job, in the order a person would fix them: the roles' models, the run
// and checkpoint folders, and the inspector's port.
void check_before_loading(const config::config& cfg);

} // namespace pedagogy::actors
