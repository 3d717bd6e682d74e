#pragma once
// A blocking TLS client for tests of the ports (OpenSSL): connects to 127.0.0.1, checks the
// server's certificate against a CA file (it must name 127.0.0.1), presents a client
// certificate when given one, then sends and reads lines like feed_client.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "feed_client.hpp"

namespace simcap::testing {

class tls_client {
 public:
  struct identity {
    std::filesystem::path ca;         // trusted for the server's certificate
    std::filesystem::path cert, key;  // the client's (mutual TLS), or empty
  };

  tls_client(std::uint16_t port, const identity& id) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx_, id.ca.c_str(), nullptr) != 1) {
      fail("ca");
      return;
    }
    if (!id.cert.empty() &&
        (SSL_CTX_use_certificate_chain_file(ctx_, id.cert.c_str()) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx_, id.key.c_str(), SSL_FILETYPE_PEM) != 1)) {
      fail("client certificate");
      return;
    }
    fd_ = connect_loopback(port);
    if (fd_ < 0) {
      fail("connect");
      return;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    if (SSL_connect(ssl_) != 1) {
      fail("handshake");
      return;
    }
    ok_ = true;
  }
  ~tls_client() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  tls_client(const tls_client&) = delete;
  tls_client& operator=(const tls_client&) = delete;

  // Whether the handshake completed (with TLS 1.3 a server that refuses the client's certificate
  // says so after it: the first read then finds the connection closed).
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  // The common name of the server certificate's subject.
  std::string server_name() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return {};
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // The next line, or nullopt on timeout or when the peer closed (then closed() is true).
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      if (closed_ || !ok_) return std::nullopt;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      if (SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      }
      char tmp[16384];
      const int n = SSL_read(ssl_, tmp, sizeof tmp);
      if (n <= 0) {
        closed_ = true;
        continue;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }
  bool closed() const { return closed_; }

 private:
  void fail(const char* what) {
    char why[256] = {};
    ERR_error_string_n(ERR_get_error(), why, sizeof why);
    error_ = std::string(what) + ": " + why;
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool ok_ = false, closed_ = false;
  std::string buf_, error_;
};

}  // namespace simcap::testing
