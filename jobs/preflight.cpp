// Checks before anything loads (see preflight.hpp).
#include "jobs/preflight.hpp"

#include "actors/openai_generator.hpp"
#include "jobs/placement.hpp"
#include "jobs/setup.hpp"
#include "models/serving/openai_http.hpp"
#include "models/tensor/device.hpp"
#include "runtime/errors.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pedagogy::actors {

namespace fs = std::filesystem;

void check_writable_folder(const fs::path& folder, const std::string& key) {
  // The nearest folder that exists is where the first write happens.
  fs::path at = fs::absolute(folder).lexically_normal();
  std::error_code ec;
  while (!fs::exists(at, ec) && at.has_parent_path() && at != at.parent_path())
    at = at.parent_path();
  if (!fs::is_directory(at, ec))
    throw input_error(
      key,
      fmt::format("cannot make the folder {}: {} is not a folder", folder.string(), at.string()),
      fmt::format("point {} somewhere else", key));
  if (::access(at.c_str(), W_OK | X_OK) != 0)
    throw input_error(key, fmt::format("cannot write in {}: {}", at.string(), std::strerror(errno)),
                      fmt::format("point {} at a folder you may write in", key));
}

void check_inspect_port(const config::inspect_config& inspect) {
  if (!inspect.enabled || inspect.port == 0)
    return;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const auto port = std::to_string(inspect.port);
  if (::getaddrinfo(inspect.host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr)
    return; // the inspector reports an address it cannot use, with its own message
  const int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  int error = 0;
  if (fd >= 0) {
    const int on = 1; // as the inspector binds: a port in TIME_WAIT is free
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0)
      error = errno;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (error == EADDRINUSE)
    throw input_error("inspect.port",
                      fmt::format("port {} on {} is in use (another job's inspector, or another "
                                  "program)",
                                  inspect.port, inspect.host),
                      "set inspect.port = 0 for any free port (the job prints it), choose "
                      "another, or inspect.enabled = false");
}

void check_role_before_loading(const config::role_config& role, const std::string& name) {
  if (role.backend == config::backend_kind::openai) {
    models::check_openai_endpoint(name, role.openai.base_url, role.openai.api_key_env,
                                  std::min(5.0, role.openai.timeout_s));
    return;
  }
  // A GPU asked of a CPU-only LibTorch (or of a machine without one) is one clear line now.
  models::device_from_config(role.device, name + ".device");
  check_model_available(role, name);
}

void check_roles_before_loading(const config::config& cfg) {
  check_role_before_loading(cfg.tutor, "tutor");
  const bool solver = cfg.ped.policy == config::ped_policy::solver;
  if (!solver)
    check_role_before_loading(cfg.student, "student");
  if (needs_judge_generator(cfg) && !solver)
    check_role_before_loading(cfg.judge, "judge");
}

void check_before_loading(const config::config& cfg) {
  check_roles_before_loading(cfg);
  check_writable_folder(cfg.logging.run_dir, "logging.run_dir");
  if (!cfg.checkpoint.dir.empty())
    check_writable_folder(cfg.checkpoint.dir, "checkpoint.dir");
  check_inspect_port(cfg.inspect);
}

} // namespace pedagogy::actors
