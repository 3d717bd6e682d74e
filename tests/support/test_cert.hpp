#pragma once
// A self-signed certificate for 127.0.0.1 and localhost, made by `openssl req` for a test's TLS
// peer; the client trusts it as its CA file.
#include <gtest/gtest.h>

#include <filesystem>

#include "process.hpp"

namespace simcap::testing {

struct test_cert {
  std::filesystem::path cert, key;
};

inline test_cert make_test_cert(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  test_cert c{dir / "cert.pem", dir / "key.pem"};
  child openssl({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                 c.key.string(), "-out", c.cert.string(), "-days", "2", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
                dir / "openssl.out", dir / "openssl.err");
  EXPECT_EQ(openssl.wait(std::chrono::seconds(60)), 0) << openssl.err();
  return c;
}

}  // namespace simcap::testing
