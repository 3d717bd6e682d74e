#include "net/tls_server.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace simcap {

namespace ssl = boost::asio::ssl;

namespace {

// OpenSSL's reason for the last failure, or Asio's when OpenSSL queued none.
std::string why(const boost::system::system_error& e) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return e.code().message();
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

}  // namespace

std::shared_ptr<ssl::context> tls_server_context::load(const tls_files& f) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use | ssl::context::no_compression);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // The server's order of ciphers (OpenSSL's default list, which has no weak ones).
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE);
  const auto step = [](const std::filesystem::path& file, auto&& f) {
    try {
      f();
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("tls: " + file.string() + ": " + why(e));
    }
  };
  step(f.cert, [&] { ctx->use_certificate_chain_file(f.cert.string()); });
  step(f.key, [&] { ctx->use_private_key_file(f.key.string(), ssl::context::pem); });
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    throw std::runtime_error("tls: " + f.key.string() + ": the key is not the certificate's");
  }
  if (!f.client_ca.empty()) {
    step(f.client_ca, [&] { ctx->load_verify_file(f.client_ca.string()); });
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(f.client_ca.c_str());
    if (names == nullptr) {
      ERR_clear_error();
      throw std::runtime_error("tls: " + f.client_ca.string() + ": no CA certificate in it");
    }
    SSL_CTX_set_client_CA_list(native, names);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    // Resumed sessions keep their verified client: the id context ties them to this server.
    static constexpr unsigned char kId[] = "simcap-feed";
    SSL_CTX_set_session_id_context(native, kId, sizeof kId - 1);
  }
  return ctx;
}

tls_server_context::tls_server_context(tls_files files)
    : files_(std::move(files)), ctx_(load(files_)) {}

std::shared_ptr<ssl::context> tls_server_context::current() const {
  std::lock_guard lock(mu_);
  return ctx_;
}

std::optional<std::string> tls_server_context::reload() {
  std::shared_ptr<ssl::context> fresh;
  try {
    fresh = load(files_);
  } catch (const std::exception& e) {
    return e.what();
  }
  std::lock_guard lock(mu_);
  ctx_ = std::move(fresh);
  return std::nullopt;
}

bool peer_certificate_has_name(SSL* ssl, std::string_view name) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return false;
  bool ok = X509_check_host(cert, name.data(), name.size(),
                            X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                            nullptr) == 1;
  if (!ok) {
    if (X509_NAME* subject = X509_get_subject_name(cert)) {
      const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
      if (at >= 0) {
        ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
        const auto* bytes = reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn));
        ok = std::string_view(bytes, static_cast<std::size_t>(ASN1_STRING_length(cn))) == name;
      }
    }
  }
  X509_free(cert);
  return ok;
}

}  // namespace simcap
