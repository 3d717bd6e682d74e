#pragma once
// What every outbound TLS client shares (https receivers, STARTTLS relays): a client context
// trusting the system's CA store and the sink's ca_file, and a stream that sends the server
// name (SNI) and checks the certificate's host.
#include <boost/asio/ssl.hpp>
#include <memory>
#include <string>

#include "config.hpp"

namespace simcap::outbound {

inline std::unique_ptr<boost::asio::ssl::context> client_tls_context(const sink_config& cfg) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_default_verify_paths();
  if (!cfg.ca_file.empty()) ctx->load_verify_file(cfg.ca_file);
  ctx->set_verify_mode(cfg.verify_tls ? ssl::verify_peer : ssl::verify_none);
  return ctx;
}

// False when the server name cannot be set.
template <class Stream>
bool prepare_tls_client(boost::asio::ssl::stream<Stream>& s, const std::string& host, bool verify) {
  if (!SSL_set_tlsext_host_name(s.native_handle(), host.c_str())) return false;
  if (verify) s.set_verify_callback(boost::asio::ssl::host_name_verification(host));
  return true;
}

}  // namespace simcap::outbound
