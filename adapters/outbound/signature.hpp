#pragma once
// Simcap-Signature (SPEC §12, Stripe's scheme): t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
// "<t>.<body>")>, computed with OpenSSL.
#include <cstdint>
#include <string>
#include <string_view>

namespace simcap::outbound {

// Lower-case hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// The header's value for a body sent at time t.
std::string signature_header(std::string_view secret, std::int64_t t, std::string_view body);

}  // namespace simcap::outbound
