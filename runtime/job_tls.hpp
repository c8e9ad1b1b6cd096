// The job's TLS identity: one key and self-signed certificate per job, so that the actor ports of
// a job accept only the processes of that job.
//
// Rank 0 calls create(), sends to_blob() to the other ranks (over MPI, elsewhere), and every rank
// writes the credentials into a private folder and points its actor system at them:
//
//   rank 0:  create() ──to_blob()──> MPI_Bcast ──> from_blob()   (every rank)
//            write_private(credentials, tmp) -> folder (0700; cert.pem, key.pem 0600)
//            configure(system_config, folder)  -> caf::openssl::publish / remote_actor
//
// The certificate is its own CA (openssl.cafile = cert.pem), and CAF 0.17.6 sets
// SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT on both the accepting and the connecting side
// as soon as any openssl.* option is set (libcaf_openssl/src/session.cpp, create_ssl_context). So
// a peer passes only when it proves it holds this job's key: another job's processes, a plain
// caf::io middleman and any other TCP client fail the handshake before BASP sees a byte.
//
// Only caf::openssl::publish ports are protected: a port opened with the plain
// middleman().publish() on the same system still accepts anyone. Loading the openssl manager
// without these options gives anonymous TLS 1.2 (AECDH, SECLEVEL=0) that any client passes.
// CAF 0.17.6 has no handshake timeout, and its network thread spins at full CPU while an accepted
// connection has not finished its handshake (a bare TCP connect is enough): bind to the cluster's
// interface only, and close the port once every rank is connected (tests/runtime/job_tls_test.cpp
// shows how; caf::openssl::unpublish itself does not compile in 0.17.6).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace caf {
class actor_system_config;
}

namespace pedagogy::job_tls {

// PEM text of the job's certificate and its private key (unencrypted PKCS#8). The key exists only
// in the job's processes, in what MPI carries between them and in their 0600 files: whoever can
// read MPI's traffic or those files is part of the job.
struct job_credentials {
  std::string certificate_pem;
  std::string key_pem;

  bool operator==(const job_credentials&) const = default;
};

// A fresh P-256 key and a self-signed X.509 v3 certificate for it (random 127-bit serial, subject
// CN=`common_name`, valid from an hour ago, to tolerate clocks that differ between nodes, for
// `valid_days`; CA:TRUE so that it can be its own trust anchor). Throws std::runtime_error with
// OpenSSL's reasons when a call fails.
job_credentials create(const std::string& common_name, int valid_days = 30);

// One string to broadcast, and back. from_blob() also checks that the key belongs to the
// certificate and throws std::runtime_error for a blob that is cut, altered or not one of ours.
std::string to_blob(const job_credentials& credentials);
job_credentials from_blob(std::string_view blob);

// Creates a new folder `parent`/job-tls-XXXXXX with mode 0700 (mkdtemp), writes cert.pem and
// key.pem into it with mode 0600 (neither is readable by others at any moment), and returns it.
// CAF reads both files again for every connection, so the folder must stay until the actor system
// is gone; removing it afterwards is the caller's job. Throws files::write_error.
std::filesystem::path write_private(const job_credentials& credentials,
                                    const std::filesystem::path& parent);

// Loads caf::openssl::manager and points openssl.certificate, openssl.key and openssl.cafile at
// `folder`'s files. The io middleman must be loaded before (CAF's manager refuses to start
// without it). The files are loaded once here with the calls CAF makes, so a missing file or a
// key that does not match fails now with std::runtime_error, not at the first connection (where
// CAF would throw inside its network thread).
void configure(caf::actor_system_config& system_config, const std::filesystem::path& folder);

} // namespace pedagogy::job_tls
