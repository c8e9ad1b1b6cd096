// Creating, moving and installing the job's TLS credentials (see job_tls.hpp).
#include "runtime/job_tls.hpp"

#include "runtime/files.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/openssl/manager.hpp>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>

namespace pedagogy::job_tls {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view blob_magic = "pedagogy-job-tls 1";

// Everything OpenSSL queued on this thread, oldest first; the queue is empty afterwards.
std::string openssl_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += text.empty() ? "" : "; ";
    text += buffer;
  }
  return text.empty() ? "OpenSSL gave no reason" : text;
}

[[noreturn]] void fail(std::string_view what) {
  throw std::runtime_error(fmt::format("job TLS: {} failed: {}", what, openssl_errors()));
}

// OpenSSL calls report success as 1 (most), a positive count (X509_sign) or a non-null pointer.
void check(int result, std::string_view what) {
  if (result <= 0)
    fail(what);
}
template <class T>
T* check(T* pointer, std::string_view what) {
  if (pointer == nullptr)
    fail(what);
  return pointer;
}

template <auto free_function>
struct openssl_free {
  template <class T>
  void operator()(T* pointer) const {
    free_function(pointer);
  }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_free<EVP_PKEY_free>>;
using x509_ptr = std::unique_ptr<X509, openssl_free<X509_free>>;
using bio_ptr = std::unique_ptr<BIO, openssl_free<BIO_free_all>>;
using bignum_ptr = std::unique_ptr<BIGNUM, openssl_free<BN_free>>;
using asn1_integer_ptr = std::unique_ptr<ASN1_INTEGER, openssl_free<ASN1_INTEGER_free>>;
using extension_ptr = std::unique_ptr<X509_EXTENSION, openssl_free<X509_EXTENSION_free>>;
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, openssl_free<SSL_CTX_free>>;

std::string pem_of(const std::function<int(BIO*)>& write, std::string_view what) {
  bio_ptr bio{check(BIO_new(BIO_s_mem()), "creating a memory BIO")};
  check(write(bio.get()), what);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  if (size <= 0 || data == nullptr)
    fail(what);
  return std::string(data, static_cast<size_t>(size));
}

bio_ptr reader_of(std::string_view text) {
  return bio_ptr{
    check(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), "creating a memory BIO")};
}

// The extensions that let the certificate be a client's, a server's and its own trust anchor.
void add_extensions(X509* certificate) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, certificate, certificate, nullptr, nullptr, 0);
  const std::pair<int, const char*> extensions[] = {
    {NID_basic_constraints, "critical,CA:TRUE"},
    {NID_key_usage, "critical,digitalSignature,keyCertSign"},
    {NID_ext_key_usage, "serverAuth,clientAuth"},
    {NID_subject_key_identifier, "hash"},
  };
  for (const auto& [nid, value] : extensions) {
    extension_ptr extension{check(X509V3_EXT_conf_nid(nullptr, &context, nid, value),
                                  fmt::format("making the extension {}", OBJ_nid2sn(nid)))};
    check(X509_add_ext(certificate, extension.get(), -1), "adding a certificate extension");
  }
}

// Throws unless `credentials` are a certificate and the private key of its public key.
void check_pair(const job_credentials& credentials) {
  auto cert_bio = reader_of(credentials.certificate_pem);
  x509_ptr certificate{check(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr),
                             "reading the job certificate")};
  auto key_bio = reader_of(credentials.key_pem);
  pkey_ptr key{check(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr),
                     "reading the job key")};
  check(X509_check_private_key(certificate.get(), key.get()),
        "matching the job key to its certificate");
}

size_t parse_size(std::string_view text, std::string_view what) {
  size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || text.empty())
    throw std::runtime_error(
      fmt::format("job TLS: the credentials blob has a bad {} '{}'", what, text));
  return value;
}

} // namespace

job_credentials create(const std::string& common_name, int valid_days) {
  if (valid_days <= 0)
    throw std::runtime_error(
      fmt::format("job TLS: a certificate valid for {} days is never valid", valid_days));
  ERR_clear_error();
  pkey_ptr key{check(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), "generating a P-256 key")};
  x509_ptr certificate{check(X509_new(), "allocating a certificate")};
  check(X509_set_version(certificate.get(), X509_VERSION_3), "setting the certificate version");

  // A random serial: two certificates of the same name never share one.
  bignum_ptr serial{check(BN_new(), "allocating the serial number")};
  check(BN_rand(serial.get(), 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY), "drawing a serial number");
  asn1_integer_ptr serial_asn1{
    check(BN_to_ASN1_INTEGER(serial.get(), nullptr), "encoding the serial number")};
  check(X509_set_serialNumber(certificate.get(), serial_asn1.get()), "setting the serial number");

  // Valid from an hour ago: a node whose clock is a little behind rank 0's still accepts it.
  check(X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -3600), "setting notBefore");
  check(X509_time_adj_ex(X509_getm_notAfter(certificate.get()), valid_days, 0, nullptr),
        "setting notAfter");

  X509_NAME* name = check(X509_get_subject_name(certificate.get()), "reading the subject name");
  const auto add_name = [&](const char* field, const std::string& value) {
    check(X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                     0),
          fmt::format("setting {}='{}' (at most 64 characters)", field, value));
  };
  add_name("O", "pedagogy");
  add_name("CN", common_name);
  check(X509_set_issuer_name(certificate.get(), name), "setting the issuer (self-signed)");
  check(X509_set_pubkey(certificate.get(), key.get()), "setting the public key");
  add_extensions(certificate.get());
  check(X509_sign(certificate.get(), key.get(), EVP_sha256()), "signing the certificate");

  job_credentials credentials;
  credentials.certificate_pem =
    pem_of([&](BIO* bio) { return PEM_write_bio_X509(bio, certificate.get()); },
           "writing the certificate as PEM");
  credentials.key_pem = pem_of(
    [&](BIO* bio) {
      return PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    },
    "writing the key as PEM");
  return credentials;
}

std::string to_blob(const job_credentials& credentials) {
  return fmt::format("{} {} {}\n{}{}", blob_magic, credentials.certificate_pem.size(),
                     credentials.key_pem.size(), credentials.certificate_pem, credentials.key_pem);
}

job_credentials from_blob(std::string_view blob) {
  // "<magic> <certificate bytes> <key bytes>\n" then both PEM texts, nothing else.
  const size_t line_end = blob.find('\n');
  const std::string_view header = blob.substr(0, line_end);
  if (line_end == std::string_view::npos || !header.starts_with(blob_magic) ||
      header.size() <= blob_magic.size() || header[blob_magic.size()] != ' ')
    throw std::runtime_error(
      "job TLS: the credentials blob does not start with its header (hint: it must come from "
      "job_tls::to_blob of the same version)");
  const std::string_view sizes = header.substr(blob_magic.size() + 1);
  const size_t space = sizes.find(' ');
  if (space == std::string_view::npos)
    throw std::runtime_error("job TLS: the credentials blob's header lacks the key size");
  const size_t certificate_size = parse_size(sizes.substr(0, space), "certificate size");
  const size_t key_size = parse_size(sizes.substr(space + 1), "key size");
  const std::string_view body = blob.substr(line_end + 1);
  if (body.size() != certificate_size + key_size)
    throw std::runtime_error(
      fmt::format("job TLS: the credentials blob holds {} bytes after its header, not {} + {}",
                  body.size(), certificate_size, key_size));
  job_credentials credentials{std::string(body.substr(0, certificate_size)),
                              std::string(body.substr(certificate_size))};
  ERR_clear_error();
  check_pair(credentials);
  return credentials;
}

fs::path write_private(const job_credentials& credentials, const fs::path& parent) {
  // mkdtemp makes the folder 0700 and fails rather than reuse one that exists, so nobody else
  // can have prepared it or be able to look inside.
  std::string name = (parent / "job-tls-XXXXXX").string();
  if (::mkdtemp(name.data()) == nullptr)
    throw files::write_error(parent, fmt::format("cannot create a private folder for the job's "
                                                 "TLS key: {}",
                                                 std::strerror(errno)));
  const fs::path folder = name;
  constexpr auto owner_only = fs::perms::owner_read | fs::perms::owner_write;
  try {
    files::write_atomically(folder / "cert.pem", credentials.certificate_pem, owner_only);
    files::write_atomically(folder / "key.pem", credentials.key_pem, owner_only);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(folder, ignored);
    throw;
  }
  return folder;
}

void configure(caf::actor_system_config& system_config, const fs::path& folder) {
  const std::string certificate = (folder / "cert.pem").string();
  const std::string key = (folder / "key.pem").string();
  // The calls CAF's session makes for every connection, once now, where a failure can be told.
  ERR_clear_error();
  ssl_ctx_ptr context{check(SSL_CTX_new(TLS_method()), "creating a TLS context")};
  check(SSL_CTX_use_certificate_chain_file(context.get(), certificate.c_str()),
        fmt::format("loading the job certificate {}", certificate));
  check(SSL_CTX_use_PrivateKey_file(context.get(), key.c_str(), SSL_FILETYPE_PEM),
        fmt::format("loading the job key {}", key));
  check(SSL_CTX_check_private_key(context.get()),
        fmt::format("matching {} to {}", key, certificate));
  check(SSL_CTX_load_verify_locations(context.get(), certificate.c_str(), nullptr),
        fmt::format("trusting {}", certificate));

  system_config.load<caf::openssl::manager>();
  system_config.set("openssl.certificate", certificate);
  system_config.set("openssl.key", key);
  // The job's own certificate is the only CA: a peer must present it, that is, hold its key.
  system_config.set("openssl.cafile", certificate);
  if (system_config.openssl_certificate != certificate || system_config.openssl_key != key ||
      system_config.openssl_cafile != certificate)
    throw std::logic_error("job TLS: CAF did not take the openssl.* options (hint: this CAF is "
                           "not 0.17, whose options are actor_system_config members)");
}

} // namespace pedagogy::job_tls
