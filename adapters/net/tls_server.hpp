#pragma once
// TLS on a port ([tls], API.md "Hardening keys"): the server context its connections take when
// they are accepted, TLS 1.2 or later, built from the certificate chain and key files (and, on
// the feed port with client_ca, the CA that must have signed each client's certificate).
// reload() builds a new context from the files (SIGHUP): new connections take it, and a
// connection keeps the one it began with, so nothing is dropped.
#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace simcap {

struct tls_files {
  std::filesystem::path cert, key;
  std::filesystem::path client_ca;  // empty: no client certificate asked
};

class tls_server_context {
 public:
  // Throws std::runtime_error naming the file and OpenSSL's reason when they do not load.
  explicit tls_server_context(tls_files files);

  std::shared_ptr<boost::asio::ssl::context> current() const;
  // Loads the files again; when they do not load, keeps the context in use and returns why.
  std::optional<std::string> reload();
  bool asks_client_certificate() const noexcept { return !files_.client_ca.empty(); }

 private:
  static std::shared_ptr<boost::asio::ssl::context> load(const tls_files& f);

  const tls_files files_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> ctx_;
};

// Whether the peer's (verified) certificate carries this name: its subject's common name, or a
// DNS name among its subject alternative names (exactly: no wildcards). False without one.
bool peer_certificate_has_name(SSL* ssl, std::string_view name);

}  // namespace simcap
