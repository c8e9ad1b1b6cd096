// The job's TLS: two actor systems holding the same job credentials talk over caf::openssl, and
// everything else that connects to the published port (another job's system, a client that
// trusts the job but holds another key, a TLS client without a certificate, a plain middleman, a
// raw TCP client sending garbage) is refused before the published actor sees a message.
//
// The published actor counts what it receives; each refusal case ends with one legitimate request,
// so "the count is exactly 1" says both that nothing got through and that the server still works.
// Every wait is bounded by `patience`; nothing sleeps.
#include "runtime/job_tls.hpp"

#include <arpa/inet.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>

using namespace pedagogy;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// Far longer than a loopback handshake takes, short enough that a hang fails the case.
constexpr auto patience = 10s;

fs::path scratch(const std::string& name) {
  const fs::path dir =
    fs::temp_directory_path() / ("pedagogy_job_tls_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

fs::perms perms_of(const fs::path& path) {
  return fs::status(path).permissions() & fs::perms::mask;
}

// "ok" or the error, for messages: doctest renders them even for passing checks (with -s).
template <class T>
std::string why(const caf::actor_system& system, const caf::expected<T>& result) {
  return result ? "ok" : system.render(result.error());
}

// Answers n with n + 1 and counts every message it handles.
caf::behavior counting_echo(caf::event_based_actor*, std::shared_ptr<std::atomic<int>> received) {
  return {[received](int n) {
    ++*received;
    return n + 1;
  }};
}

// An actor system with the io middleman and, when `tls_folder` is not empty, the job's TLS from
// that folder. `adjust` may change the config last (to build the odd clients of the refusals).
struct node {
  caf::actor_system_config config;
  caf::actor_system system;

  explicit node(const fs::path& tls_folder,
                const std::function<void(caf::actor_system_config&)>& adjust = {})
    : system(prepared(config, tls_folder, adjust)) {}

  static caf::actor_system_config&
  prepared(caf::actor_system_config& config, const fs::path& tls_folder,
           const std::function<void(caf::actor_system_config&)>& adjust) {
    config.set("scheduler.max-threads", size_t{2});
    config.load<caf::io::middleman>();
    if (!tls_folder.empty())
      job_tls::configure(config, tls_folder);
    if (adjust)
      adjust(config);
    return config;
  }
};

// A node that publishes a counting echo actor on 127.0.0.1 over TLS; the actor is stopped before
// the node goes, so a failed case cannot leave the system waiting for it.
struct tls_server {
  node host;
  std::shared_ptr<std::atomic<int>> received = std::make_shared<std::atomic<int>>(0);
  caf::actor echo;
  uint16_t port = 0;

  explicit tls_server(const fs::path& tls_folder) : host(tls_folder) {
    echo = host.system.spawn(counting_echo, received);
    auto published = caf::openssl::publish(echo, 0, "127.0.0.1");
    if (!published)
      caf::anon_send_exit(echo, caf::exit_reason::user_shutdown); // the destructor will not run
    REQUIRE_MESSAGE(published, why(host.system, published));
    port = *published;
  }
  ~tls_server() {
    caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  }
};

// Connects through `middleman` (the plain or the TLS one of a system) like remote_actor does,
// but gives up after `patience` instead of waiting forever.
caf::expected<caf::actor> reach(caf::actor_system& system,
                                const caf::io::middleman_actor& middleman, uint16_t port) {
  caf::expected<caf::actor> result = caf::make_error(caf::sec::request_timeout);
  caf::scoped_actor self{system};
  self->request(middleman, patience, caf::connect_atom::value, std::string("127.0.0.1"), port)
    .receive(
      [&](const caf::node_id&, caf::strong_actor_ptr& handle, const std::set<std::string>&) {
        if (handle)
          result = caf::actor_cast<caf::actor>(std::move(handle));
        else
          result = caf::make_error(caf::sec::no_actor_published_at_port);
      },
      [&](caf::error& error) { result = std::move(error); });
  return result;
}

caf::expected<caf::actor> reach_tls(node& client, uint16_t port) {
  return reach(client.system, client.system.openssl_manager().actor_handle(), port);
}

// One request to the echo, bounded by `patience`.
caf::expected<int> ask(caf::actor_system& system, const caf::actor& echo, int n) {
  caf::expected<int> result = caf::make_error(caf::sec::request_timeout);
  caf::scoped_actor self{system};
  self->request(echo, patience, n)
    .receive([&](int answer) { result = answer; }, [&](caf::error& error) { result = error; });
  return result;
}

// The server still serves a client of the job, and its actor got exactly that one message.
void check_still_serving_only_the_job(tls_server& server, const fs::path& job_folder) {
  node client(job_folder);
  auto echo = reach_tls(client, server.port);
  REQUIRE_MESSAGE(echo, why(client.system, echo));
  auto answer = ask(client.system, *echo, 41);
  REQUIRE_MESSAGE(answer, why(client.system, answer));
  CHECK(*answer == 42);
  CHECK(server.received->load() == 1);
}

// A TCP socket connected to 127.0.0.1:`port`, closed on destruction.
struct raw_socket {
  int fd = -1;
  explicit raw_socket(uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr) == 1);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    // Blocking calls on it (OpenSSL's) give up after `patience` too.
    timeval timeout{std::chrono::seconds(patience).count(), 0};
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) == 0);
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) == 0);
  }
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;
  ~raw_socket() {
    if (fd >= 0)
      ::close(fd);
  }

  // Reads (and drops) whatever comes until the peer closes: true when it closed within patience.
  bool closed_by_peer() const {
    const auto deadline = std::chrono::steady_clock::now() + patience;
    char buffer[4096];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return false;
      pollfd wanted{fd, POLLIN, 0};
      const int ready = ::poll(&wanted, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready <= 0)
        return false;
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET))
        return true;
      if (n < 0 && errno != EINTR && errno != EAGAIN)
        return true; // any other error also means the connection is gone
    }
  }
};

template <auto free_function>
struct openssl_free {
  template <class T>
  void operator()(T* pointer) const {
    free_function(pointer);
  }
};

std::string openssl_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += text.empty() ? "" : "; ";
    text += buffer;
  }
  return text;
}

} // namespace

TEST_CASE("two systems holding the same job credentials reach each other over TLS") {
  const fs::path dir = scratch("same_job");
  const fs::path job = job_tls::write_private(job_tls::create("job-same"), dir);
  tls_server server(job);
  node client(job);
  auto echo = reach_tls(client, server.port);
  REQUIRE_MESSAGE(echo, why(client.system, echo));
  auto answer = ask(client.system, *echo, 1);
  REQUIRE_MESSAGE(answer, why(client.system, answer));
  CHECK(*answer == 2);
  CHECK(server.received->load() == 1);
}

TEST_CASE("a system holding another job's credentials is refused and no message arrives") {
  const fs::path dir = scratch("other_job");
  const fs::path job = job_tls::write_private(job_tls::create("job-a"), dir);
  const fs::path other = job_tls::write_private(job_tls::create("job-b"), dir);
  tls_server server(job);
  {
    node intruder(other);
    auto echo = reach_tls(intruder, server.port);
    CHECK_FALSE(echo);
    MESSAGE("refused with: ", why(intruder.system, echo));
    if (echo) // what an intruder would do with the handle
      (void)ask(intruder.system, *echo, 7);
  }
  CHECK(server.received->load() == 0);
  check_still_serving_only_the_job(server, job);
}

// The case above fails on the client already (it does not trust the server); this one needs the
// server to check the client's certificate.
TEST_CASE("a client that trusts the job but holds another job's key is refused by the server") {
  const fs::path dir = scratch("trusting_intruder");
  const fs::path job = job_tls::write_private(job_tls::create("job-a"), dir);
  const fs::path other = job_tls::write_private(job_tls::create("job-b"), dir);
  tls_server server(job);
  {
    node intruder(other, [&](caf::actor_system_config& config) {
      config.set("openssl.cafile", (job / "cert.pem").string());
    });
    REQUIRE(intruder.config.openssl_cafile == (job / "cert.pem").string());
    auto echo = reach_tls(intruder, server.port);
    CHECK_FALSE(echo);
    MESSAGE("refused with: ", why(intruder.system, echo));
    if (echo) // what an intruder would do with the handle
      (void)ask(intruder.system, *echo, 7);
  }
  CHECK(server.received->load() == 0);
  check_still_serving_only_the_job(server, job);
}

TEST_CASE("a TLS client without a certificate is refused by the server") {
  const fs::path dir = scratch("no_certificate");
  const fs::path job = job_tls::write_private(job_tls::create("job-a"), dir);
  tls_server server(job);
  {
    raw_socket socket(server.port);
    std::unique_ptr<SSL_CTX, openssl_free<SSL_CTX_free>> context{SSL_CTX_new(TLS_client_method())};
    REQUIRE(context);
    // It trusts the server, so only the server's demand for a client certificate can stop it.
    REQUIRE(SSL_CTX_load_verify_locations(context.get(), (job / "cert.pem").c_str(), nullptr) == 1);
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
    std::unique_ptr<SSL, openssl_free<SSL_free>> ssl{SSL_new(context.get())};
    REQUIRE(ssl);
    REQUIRE(SSL_set_fd(ssl.get(), socket.fd) == 1);
    ERR_clear_error();
    // With TLS 1.3 the client's side of the handshake may finish before the server has looked at
    // the (empty) client certificate; the server's verdict arrives on the first read.
    int result = SSL_connect(ssl.get());
    if (result == 1) {
      char byte = 0;
      result = SSL_read(ssl.get(), &byte, 1);
    }
    const int error = SSL_get_error(ssl.get(), result);
    const std::string reasons = openssl_errors();
    MESSAGE("TLS version ", std::string(SSL_get_version(ssl.get())), ", SSL error ", error, ": ",
            reasons);
    CHECK(result <= 0);
    // WANT_READ here would be the receive timeout: the server neither refused nor answered.
    CHECK(error != SSL_ERROR_WANT_READ);
  }
  CHECK(server.received->load() == 0);
  check_still_serving_only_the_job(server, job);
}

TEST_CASE("a plain middleman connecting to a TLS port is refused and no message arrives") {
  const fs::path dir = scratch("plain");
  const fs::path job = job_tls::write_private(job_tls::create("job-a"), dir);
  tls_server server(job);
  {
    node plain(fs::path{});
    auto echo = reach(plain.system, plain.system.middleman().actor_handle(), server.port);
    CHECK_FALSE(echo);
    MESSAGE("refused with: ", why(plain.system, echo));
    if (echo) // what an intruder would do with the handle
      (void)ask(plain.system, *echo, 7);
  }
  CHECK(server.received->load() == 0);
  check_still_serving_only_the_job(server, job);
}

TEST_CASE("a raw TCP client sending garbage is disconnected and the server keeps serving") {
  const fs::path dir = scratch("garbage");
  const fs::path job = job_tls::write_private(job_tls::create("job-a"), dir);
  tls_server server(job);
  {
    raw_socket socket(server.port);
    const std::string garbage = "GET / HTTP/1.0\r\n\r\nthis is not a TLS record at all";
    REQUIRE(::send(socket.fd, garbage.data(), garbage.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(garbage.size()));
    CHECK(socket.closed_by_peer());
  }
  CHECK(server.received->load() == 0);
  check_still_serving_only_the_job(server, job);
}

// What a job can do once every rank is connected: close the door, so that nothing can even start
// a handshake (CAF 0.17.6 has no handshake timeout).
TEST_CASE("closing the port keeps the connected job talking and refuses new clients") {
  const fs::path dir = scratch("closed");
  const fs::path job = job_tls::write_private(job_tls::create("job-a"), dir);
  tls_server server(job);
  node client(job);
  auto echo = reach_tls(client, server.port);
  REQUIRE_MESSAGE(echo, why(client.system, echo));
  {
    // caf::openssl::unpublish does not compile with 0.17.6 (its header uses 0.18's
    // unpublish_atom_v and drops `whom`), so ask the TLS middleman actor directly.
    caf::scoped_actor self{server.host.system};
    caf::error closed = caf::make_error(caf::sec::request_timeout);
    self
      ->request(server.host.system.openssl_manager().actor_handle(), patience,
                caf::unpublish_atom::value, server.echo.address(), server.port)
      .receive([&] { closed = caf::none; }, [&](caf::error& error) { closed = std::move(error); });
    REQUIRE_MESSAGE(!closed, server.host.system.render(closed));
  }
  auto answer = ask(client.system, *echo, 5);
  REQUIRE_MESSAGE(answer, why(client.system, answer));
  CHECK(*answer == 6);
  node late(job);
  auto refused = reach_tls(late, server.port);
  CHECK_FALSE(refused);
  MESSAGE("refused with: ", why(late.system, refused));
  CHECK(server.received->load() == 1);
}

TEST_CASE("create gives a new key every call and the blob round-trips") {
  const auto first = job_tls::create("job-a");
  const auto second = job_tls::create("job-a");
  CHECK(first.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
  CHECK(first.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----"));
  CHECK(first.key_pem != second.key_pem);
  CHECK(first.certificate_pem != second.certificate_pem);
  CHECK(job_tls::from_blob(job_tls::to_blob(first)) == first);
  CHECK(job_tls::from_blob(job_tls::to_blob(second)) == second);
}

TEST_CASE("a cut, altered or mismatched blob is refused") {
  const auto credentials = job_tls::create("job-a");
  const std::string blob = job_tls::to_blob(credentials);
  CHECK_THROWS_AS(job_tls::from_blob(""), std::runtime_error);
  CHECK_THROWS_AS(job_tls::from_blob(blob.substr(0, blob.size() - 1)), std::runtime_error);
  CHECK_THROWS_AS(job_tls::from_blob(blob + "x"), std::runtime_error);
  CHECK_THROWS_AS(job_tls::from_blob("pedagogy-job-tls 2" + blob.substr(blob.find(' ', 17))),
                  std::runtime_error);
  // A certificate with another job's key: well-formed, but the pair does not match.
  const auto other = job_tls::create("job-b");
  CHECK_THROWS_WITH_AS(
    job_tls::from_blob(job_tls::to_blob({credentials.certificate_pem, other.key_pem})),
    doctest::Contains("matching the job key"), std::runtime_error);
}

TEST_CASE("write_private makes a 0700 folder with 0600 files and configure loads them") {
  const fs::path dir = scratch("private");
  const auto credentials = job_tls::create("job-a");
  const fs::path folder = job_tls::write_private(credentials, dir);
  CHECK(folder.parent_path() == dir);
  CHECK(perms_of(folder) == fs::perms::owner_all);
  const auto owner_rw = fs::perms::owner_read | fs::perms::owner_write;
  CHECK(perms_of(folder / "cert.pem") == owner_rw);
  CHECK(perms_of(folder / "key.pem") == owner_rw);
  CHECK(std::distance(fs::directory_iterator(folder), fs::directory_iterator()) == 2);
  // Two ranks on one node get two folders.
  CHECK(job_tls::write_private(credentials, dir) != folder);

  caf::actor_system_config config;
  config.load<caf::io::middleman>();
  job_tls::configure(config, folder);
  CHECK(config.openssl_certificate == (folder / "cert.pem").string());
  CHECK(config.openssl_key == (folder / "key.pem").string());
  CHECK(config.openssl_cafile == (folder / "cert.pem").string());

  caf::actor_system_config broken;
  fs::remove(folder / "key.pem");
  CHECK_THROWS_WITH_AS(job_tls::configure(broken, folder), doctest::Contains("key.pem"),
                       std::runtime_error);
}
