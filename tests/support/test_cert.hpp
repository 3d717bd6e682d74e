#pragma once
// A self-signed certificate for 127.0.0.1 and localhost, made by `openssl req` for a test's TLS
// peer; the client trusts it as its CA file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

// A certificate authority of the test's own, and certificates it signs (for servers and
// clients alike: they name 127.0.0.1 and localhost and may be used either way).
struct test_ca {
  std::filesystem::path cert, key;
};

inline void run_openssl(const std::filesystem::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  child openssl(args, dir / "openssl.out", dir / "openssl.err");
  EXPECT_EQ(openssl.wait(std::chrono::seconds(60)), 0) << openssl.err();
}

inline test_ca make_test_ca(const std::filesystem::path& dir, const std::string& name) {
  std::filesystem::create_directories(dir);
  test_ca ca{dir / (name + ".pem"), dir / (name + ".key")};
  run_openssl(dir, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", ca.key.string(), "-out", ca.cert.string(), "-days", "2",
                    "-subj", "/CN=" + name});
  return ca;
}

// A certificate for the common name cn, signed by ca, in dir/<file>.pem and dir/<file>.key.
inline test_cert make_signed_cert(const std::filesystem::path& dir, const test_ca& ca,
                                  const std::string& file, const std::string& cn) {
  test_cert c{dir / (file + ".pem"), dir / (file + ".key")};
  const auto csr = dir / (file + ".csr"), ext = dir / (file + ".ext");
  {
    std::ofstream(ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                       << "extendedKeyUsage=serverAuth,clientAuth\n";
  }
  run_openssl(dir, {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", c.key.string(), "-out", csr.string(), "-subj", "/CN=" + cn});
  run_openssl(
      dir, {"x509", "-req", "-in", csr.string(), "-CA", ca.cert.string(), "-CAkey", ca.key.string(),
            "-CAcreateserial", "-out", c.cert.string(), "-days", "2", "-extfile", ext.string()});
  return c;
}

}  // namespace simcap::testing
