// simcap-feed: load generator and replay tool for simcapd's feed port (SPEC §6).
//
// It synthesises a fleet (N SIMs with skewed usage, so that the busiest ones reach their
// limits) or replays a JSON-lines or CSV file, speaks the session protocol (hello, welcome,
// acks, rejects), resumes from resume_after when the connection drops, runs flat out or at a
// target rate, and prints records/s and MB/s at the end (counted up to the last ack).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "simcap/iccid.hpp"
#include "simcap/time.hpp"

namespace {

using clk = std::chrono::steady_clock;

std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The fleet's ICCIDs: SIM i of a fleet with prefix P is P followed by i, padded to 19 digits,
// plus the Luhn check digit.
std::string fleet_iccid(const std::string& prefix, std::uint64_t i) {
  std::string digits = std::to_string(i);
  std::string body = prefix + std::string(19 - prefix.size() - digits.size(), '0') + digits;
  return simcap::make_iccid(body);
}

struct options {
  std::string connect = "127.0.0.1:7071";
  std::string feed = "carrier-a";
  std::string token = "change-me-feed";
  std::uint64_t sims = 1000;
  std::uint64_t records = 100000;
  double rate = 0;  // records/s; 0: flat out
  std::uint64_t mean_bytes = 4000;
  double hot_share = 0.05;   // share of SIMs that are busy
  double hot_traffic = 0.5;  // share of records that go to them
  std::string prefix = "8901000";
  std::string replay;
  std::string write_iccids;
  std::string time;         // record time: Unix seconds or RFC 3339; default: now
  std::int64_t spread = 0;  // > 0: record times rise evenly over this many seconds up to time
  bool ids = true;
  bool progress = false;
  bool quiet = false;
  bool tls = false;  // TLS to the feed port
  std::string ca, cert, key;
  int reconnects = 20;
  double timeout = 120;  // seconds to wait for the final ack
  std::uint64_t seed = 1;
};

// ---- record sources

class source {
 public:
  virtual ~source() = default;
  // Appends the record with this sequence number; false when there is none.
  virtual bool append(std::uint64_t seq, std::string& out) = 0;
  virtual std::uint64_t last_seq() const = 0;
};

class synthetic final : public source {
 public:
  synthetic(const options& o, std::uint64_t first_seq, std::int64_t t)
      : o_(o), first_(first_seq), t_(t) {
    hot_ = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(o.sims * o.hot_share));
    hot_cut_ = static_cast<std::uint64_t>(o.hot_traffic * 1e6);
  }
  std::uint64_t last_seq() const override { return first_ + o_.records - 1; }
  // fleet_iccid(prefix, i) written in place: computing it is cheaper than a cache miss on a
  // table of a million strings.
  char* write_iccid(char* p, std::uint64_t i) const {
    static constexpr int kDoubled[10] = {0, 2, 4, 6, 8, 1, 3, 5, 7, 9};
    std::memcpy(p, o_.prefix.data(), o_.prefix.size());
    char* d = p + 19;
    for (char* q = d - 1; q >= p + o_.prefix.size(); --q) {
      *q = static_cast<char>('0' + i % 10);
      i /= 10;
    }
    int sum = 0;
    for (int k = 0; k < 19; ++k) {
      int digit = p[k] - '0';
      sum += (k % 2 == 0) ? kDoubled[digit] : digit;  // 19-digit body: even positions doubled
    }
    *d = static_cast<char>('0' + (10 - sum % 10) % 10);
    return d + 1;
  }
  bool append(std::uint64_t seq, std::string& out) override {
    if (seq < first_ || seq > last_seq()) return false;
    std::uint64_t r = splitmix(seq ^ (o_.seed * 0x5851F42D4C957F2DULL));
    std::uint64_t sim = (r % 1000000) < hot_cut_ ? (r >> 20) % hot_ : (r >> 20) % o_.sims;
    std::uint64_t bytes = (splitmix(r) % (2 * o_.mean_bytes + 1));
    std::uint64_t up = bytes / 8;
    auto put = [&](std::string_view text) { out.append(text); };
    auto num = [&](std::uint64_t v) {
      char b[24];
      auto r = std::to_chars(b, b + sizeof b, v);
      out.append(b, static_cast<std::size_t>(r.ptr - b));
    };
    put("{\"seq\":");
    num(seq);
    put(",\"iccid\":\"");
    char id[20];
    write_iccid(id, sim);
    out.append(id, sizeof id);
    // Ends rise with the seq over the spread, as a carrier's records of the last while.
    const std::int64_t end =
        o_.spread <= 0
            ? t_
            : t_ - o_.spread +
                  static_cast<std::int64_t>(static_cast<unsigned __int128>(seq - first_) *
                                            static_cast<std::uint64_t>(o_.spread) /
                                            std::max<std::uint64_t>(1, o_.records));
    put("\",\"start\":");
    num(static_cast<std::uint64_t>(end - 300));
    put(",\"end\":");
    num(static_cast<std::uint64_t>(end));
    put(",\"up\":");
    num(up);
    put(",\"down\":");
    num(bytes - up);
    put(",\"mccmnc\":\"310410\"");
    if (o_.ids) {
      put(",\"id\":\"sf-");
      num(seq);
      put("\"");
    }
    put("}\n");
    return true;
  }

 private:
  const options& o_;
  std::uint64_t first_;
  std::int64_t t_;
  std::uint64_t hot_;
  std::uint64_t hot_cut_;
};

// Lines of a file: JSON lines as they are (a "seq" is added when a line has none), or CSV with
// a header line naming the fields.
class replay final : public source {
 public:
  replay(const std::string& path, std::uint64_t first_seq) : first_(first_seq) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::string line;
    bool csv = path.size() > 4 && path.substr(path.size() - 4) == ".csv";
    std::vector<std::string> header;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      if (csv) {
        auto cells = split_csv(line);
        if (header.empty()) {
          header = cells;
          continue;
        }
        line = to_json(header, cells);
      }
      lines_.push_back(line);
    }
  }
  std::uint64_t last_seq() const override { return first_ + lines_.size() - 1; }
  bool append(std::uint64_t seq, std::string& out) override {
    if (seq < first_ || seq > last_seq()) return false;
    const std::string& l = lines_[seq - first_];
    auto brace = l.find('{');
    if (brace == std::string::npos || l.find("\"seq\"") != std::string::npos) {
      out += l;  // sent as it is: the engine judges it
    } else {
      out.append(l, 0, brace + 1);
      out += "\"seq\":" + std::to_string(seq) +
             (l.find_first_not_of(" \t", brace + 1) != std::string::npos &&
                      l[l.find_first_not_of(" \t", brace + 1)] == '}'
                  ? ""
                  : ",");
      out.append(l, brace + 1);
    }
    out += '\n';
    return true;
  }

 private:
  static std::vector<std::string> split_csv(const std::string& line) {
    std::vector<std::string> cells(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      char c = line[i];
      if (quoted) {
        if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
          cells.back() += '"';
          ++i;
        } else if (c == '"') {
          quoted = false;
        } else {
          cells.back() += c;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        cells.emplace_back();
      } else {
        cells.back() += c;
      }
    }
    return cells;
  }
  static std::string to_json(const std::vector<std::string>& header,
                             const std::vector<std::string>& cells) {
    std::string out = "{";
    for (std::size_t i = 0; i < header.size() && i < cells.size(); ++i) {
      if (cells[i].empty()) continue;
      if (out.size() > 1) out += ',';
      out += '"' + header[i] + "\":";
      bool numeric = header[i] != "iccid" && header[i] != "mccmnc" && header[i] != "id" &&
                     cells[i].find_first_not_of("0123456789") == std::string::npos;
      if (numeric) {
        out += cells[i];
      } else {
        out += '"';
        for (char c : cells[i]) {
          if (c == '"' || c == '\\') out += '\\';
          out += c;
        }
        out += '"';
      }
    }
    return out + "}";
  }
  std::uint64_t first_;
  std::vector<std::string> lines_;
};

// ---- the connection

// Ack lag: for each record, the time from its write to the first ack that covers it. Records
// are written in batches; a batch's lag is that of each of its records.
class ack_lag {
 public:
  void sent(std::uint64_t last_seq, std::uint64_t records) {
    std::lock_guard lock(mu_);
    unacked_.push_back({last_seq, records, clk::now()});
  }
  void acked(std::uint64_t upto) {
    const auto now = clk::now();
    std::lock_guard lock(mu_);
    while (!unacked_.empty() && unacked_.front().last_seq <= upto) {
      const double ms =
          std::chrono::duration<double, std::milli>(now - unacked_.front().at).count();
      lags_.push_back({ms, unacked_.front().records});
      unacked_.pop_front();
    }
  }
  // A reconnect: what was not acked is sent again (and timed again).
  void forget_unacked() {
    std::lock_guard lock(mu_);
    unacked_.clear();
  }
  // The lag (ms) below which this share of the acked records lies; 0 without any.
  double quantile(double q) {
    std::lock_guard lock(mu_);
    if (lags_.empty()) return 0;
    std::sort(lags_.begin(), lags_.end());
    std::uint64_t total = 0;
    for (const auto& l : lags_) total += l.records;
    const double want = q * static_cast<double>(total);
    std::uint64_t seen = 0;
    for (const auto& l : lags_) {
      seen += l.records;
      if (static_cast<double>(seen) >= want) return l.ms;
    }
    return lags_.back().ms;
  }

 private:
  struct batch {
    std::uint64_t last_seq, records;
    clk::time_point at;
  };
  struct lag {
    double ms;
    std::uint64_t records;
    bool operator<(const lag& o) const { return ms < o.ms; }
  };
  std::mutex mu_;
  std::deque<batch> unacked_;
  std::vector<lag> lags_;
};

struct session_state {
  std::atomic<std::uint64_t> acked{0};
  std::atomic<std::uint64_t> rejects{0};
  std::atomic<bool> broken{false};
  std::atomic<bool> error_reply{false};
  std::mutex print_mu;
  std::uint64_t rejects_printed = 0;
};

// ---- TLS (--tls): the client side, with OpenSSL

// A client context: TLS 1.2 or later, the server checked against --ca (or the system's CAs),
// and a client certificate when --cert/--key give one (mutual TLS). Null and a message when
// the files do not load.
SSL_CTX* tls_client_context(const options& o, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A server that closes without close_notify ends the stream like a plain close.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  const bool trusted = o.ca.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx) == 1
                           : SSL_CTX_load_verify_locations(ctx, o.ca.c_str(), nullptr) == 1;
  const char* failed = !trusted ? "--ca" : nullptr;
  if (!failed && !o.cert.empty() && SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1)
    failed = "--cert";
  if (!failed && !o.key.empty() &&
      SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1)
    failed = "--key";
  if (!failed) return ctx;
  char why[256];
  ERR_error_string_n(ERR_get_error(), why, sizeof why);
  error = std::string(failed) + ": " + why;
  SSL_CTX_free(ctx);
  return nullptr;
}

// The connection to the feed port: the socket, or TLS over it. The sender and the ack reader
// use it from two threads; OpenSSL wants one call at a time on a connection, so with TLS they
// take turns under a lock, the socket non-blocking, each waiting in poll() without the lock.
class conn {
 public:
  conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~conn() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ::close(fd_);
  }
  conn(const conn&) = delete;
  conn& operator=(const conn&) = delete;

  bool write_all(const char* p, std::size_t n) {
    while (n > 0) {
      if (ssl_ == nullptr) {
        ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
          if (w < 0 && errno == EINTR) continue;
          return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
        continue;
      }
      int err = 0;
      const int w = tls_call(
          [&] { return SSL_write(ssl_, p, static_cast<int>(std::min<std::size_t>(n, 1 << 30))); },
          err);
      if (w > 0) {
        p += w;
        n -= static_cast<std::size_t>(w);
      } else if (!wait_for(err)) {
        return false;
      }
    }
    return true;
  }
  // Bytes read into buf; 0 when the connection is closed.
  std::size_t read_some(char* buf, std::size_t n) {
    for (;;) {
      if (ssl_ == nullptr) {
        ssize_t r = ::recv(fd_, buf, n, 0);
        if (r < 0 && errno == EINTR) continue;
        return r > 0 ? static_cast<std::size_t>(r) : 0;
      }
      int err = 0;
      const int r = tls_call([&] { return SSL_read(ssl_, buf, static_cast<int>(n)); }, err);
      if (r > 0) return static_cast<std::size_t>(r);
      if (!wait_for(err)) return 0;
    }
  }
  // No more records: simcapd acks the rest and closes. With TLS, a close_notify first.
  void shutdown_write() {
    if (ssl_ != nullptr) {
      int err = 0;
      tls_call([&] { return SSL_shutdown(ssl_); }, err);
    }
    ::shutdown(fd_, SHUT_WR);
  }
  void shutdown_both() { ::shutdown(fd_, SHUT_RDWR); }

 private:
  template <class F>
  int tls_call(F f, int& err) {
    std::lock_guard lock(mu_);
    ERR_clear_error();
    const int r = f();
    err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    return r;
  }
  // After a TLS call that could not go on: waits until it can (false: the connection is done).
  bool wait_for(int err) {
    pollfd p{fd_, 0, 0};
    if (err == SSL_ERROR_WANT_READ) {
      p.events = POLLIN;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      p.events = POLLOUT;
    } else {
      return false;
    }
    for (;;) {
      const int r = ::poll(&p, 1, -1);
      if (r < 0 && errno == EINTR) continue;
      return r > 0 && (p.revents & (POLLERR | POLLNVAL)) == 0;
    }
  }

  int fd_;
  SSL* ssl_;
  std::mutex mu_;
};

int dial(const std::string& hostport) {
  auto colon = hostport.rfind(':');
  std::string host = hostport.substr(0, colon), port = hostport.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

// Connects (TLS when ctx is set: the handshake, the server's certificate checked against the
// host of --connect); null and a message when it cannot.
std::unique_ptr<conn> connect_to(const std::string& hostport, SSL_CTX* ctx, std::string& error) {
  const int fd = dial(hostport);
  if (fd < 0) {
    error = "cannot connect to " + hostport;
    return nullptr;
  }
  if (ctx == nullptr) return std::make_unique<conn>(fd, nullptr);
  std::string host = hostport.substr(0, hostport.rfind(':'));
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  in6_addr ip6{};
  in_addr ip4{};
  if (inet_pton(AF_INET, host.c_str(), &ip4) == 1 || inet_pton(AF_INET6, host.c_str(), &ip6) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  }
  if (SSL_connect(ssl) != 1) {
    char why[256];
    ERR_error_string_n(ERR_get_error(), why, sizeof why);
    const long verify = SSL_get_verify_result(ssl);
    error = "TLS handshake with " + hostport + " failed: " + why;
    if (verify != X509_V_OK)
      error += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    SSL_free(ssl);
    ::close(fd);
    return nullptr;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::make_unique<conn>(fd, ssl);
}

// Reads lines until the connection closes; returns the rest after the first line when asked.
class line_reader {
 public:
  explicit line_reader(conn& c) : c_(&c) {}
  std::optional<std::string> next() {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      char tmp[65536];
      const std::size_t n = c_->read_some(tmp, sizeof tmp);
      if (n == 0) return std::nullopt;
      buf_.append(tmp, n);
    }
  }

 private:
  conn* c_;
  std::string buf_;
};

std::optional<std::uint64_t> number_after(const std::string& line, const char* key) {
  auto p = line.find(key);
  if (p == std::string::npos) return std::nullopt;
  p += std::strlen(key);
  std::uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(line.data() + p, line.data() + line.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"simcap-feed: load generator and replay tool for simcapd's feed port"};
  app.add_option("--connect", o.connect, "simcapd feed address");
  app.add_option("--feed", o.feed, "feed name");
  app.add_option("--token", o.token, "feed token");
  app.add_option("--sims", o.sims, "fleet size to synthesise");
  app.add_option("--records", o.records, "records to send");
  app.add_option("--rate", o.rate, "records per second (0: flat out)");
  app.add_option("--mean-bytes", o.mean_bytes, "mean bytes per record");
  app.add_option("--hot-share", o.hot_share, "share of SIMs that are busy");
  app.add_option("--hot-traffic", o.hot_traffic, "share of records that go to the busy SIMs");
  app.add_option("--iccid-prefix", o.prefix, "digits the fleet's ICCIDs start with");
  app.add_option("--replay", o.replay, "replay a JSON-lines or .csv file instead");
  app.add_option("--write-iccids", o.write_iccids,
                 "write the fleet's ICCIDs to this file and exit");
  app.add_option("--time", o.time, "record time, Unix seconds or RFC 3339 (default: now)");
  app.add_option("--spread", o.spread,
                 "record times rise evenly over this many seconds up to --time (default 0: all "
                 "at --time)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{366} * 86400));
  app.add_option("--seed", o.seed, "random seed");
  app.add_option("--reconnects", o.reconnects, "reconnect attempts after a dropped connection");
  app.add_option("--timeout", o.timeout, "seconds to wait for the final ack");
  app.add_flag("!--no-ids", o.ids, "leave out the record id field");
  app.add_flag("--progress", o.progress, "show progress (default when stderr is a terminal)");
  app.add_flag("--quiet", o.quiet, "print only the summary");
  app.add_flag("--tls", o.tls, "speak TLS to the feed port ([tls] feed = true)");
  app.add_option("--ca", o.ca,
                 "CA file the server's certificate is checked against (default: "
                 "the system's)")
      ->check(CLI::ExistingFile);
  app.add_option("--cert", o.cert, "client certificate chain (PEM), for mutual TLS")
      ->check(CLI::ExistingFile);
  app.add_option("--key", o.key, "the client certificate's key (PEM)")->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  if (o.prefix.size() < 2 || o.prefix.size() > 12 || o.prefix.substr(0, 2) != "89") {
    std::fprintf(stderr, "simcap-feed: --iccid-prefix must be 2-12 digits starting with 89\n");
    return 2;
  }
  if (!o.write_iccids.empty()) {
    std::ofstream out(o.write_iccids);
    for (std::uint64_t i = 0; i < o.sims; ++i) out << fleet_iccid(o.prefix, i) << '\n';
    if (!o.quiet)
      std::fprintf(stderr, "wrote %llu ICCIDs to %s\n", static_cast<unsigned long long>(o.sims),
                   o.write_iccids.c_str());
    return out ? 0 : 1;
  }
  if (!o.progress) o.progress = isatty(2) && !o.quiet;
  std::int64_t t = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (!o.time.empty()) {
    std::int64_t v;
    auto [ptr, ec] = std::from_chars(o.time.data(), o.time.data() + o.time.size(), v);
    if (ec == std::errc() && ptr == o.time.data() + o.time.size()) {
      t = v;
    } else if (auto p = simcap::parse_rfc3339(o.time)) {
      t = *p;
    } else {
      std::fprintf(stderr, "simcap-feed: --time must be Unix seconds or RFC 3339\n");
      return 2;
    }
  }

  std::unique_ptr<source> src;
  std::uint64_t first_seq = 0, last_seq = 0, bytes_sent = 0;
  session_state st;
  ack_lag lag;
  auto started = clk::now();
  clk::time_point first_byte{};
  int attempts = 0;
  bool done = false;
  SSL_CTX* tls = nullptr;
  if (o.tls) {
    std::string why;
    tls = tls_client_context(o, why);
    if (tls == nullptr) {
      std::fprintf(stderr, "simcap-feed: %s\n", why.c_str());
      return 2;
    }
  }
  const std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls_owner(tls, SSL_CTX_free);
  while (!done) {
    std::string why;
    std::unique_ptr<conn> c = connect_to(o.connect, tls, why);
    if (!c) {
      if (++attempts > o.reconnects) {
        std::fprintf(stderr, "simcap-feed: %s\n", why.c_str());
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(200 * attempts, 1000)));
      continue;
    }
    std::string hello = "{\"hello\":{\"feed\":\"" + o.feed + "\",\"token\":\"" + o.token + "\"}}\n";
    line_reader rd(*c);
    if (!c->write_all(hello.data(), hello.size())) continue;
    auto welcome = rd.next();
    if (!welcome || welcome->find("\"welcome\"") == std::string::npos) {
      std::fprintf(stderr, "simcap-feed: refused: %s\n",
                   welcome ? welcome->c_str() : "(connection closed)");
      if (welcome) return 1;  // a definite answer (bad token, ...): do not retry
      if (++attempts > o.reconnects) return 1;
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * attempts));
      continue;
    }
    attempts = 0;  // connected: a later drop gets the full number of attempts again
    std::uint64_t resume = number_after(*welcome, "\"resume_after\":").value_or(0);
    if (!src) {
      first_seq = resume + 1;
      if (!o.replay.empty()) {
        src = std::make_unique<replay>(o.replay, first_seq);
      } else {
        src = std::make_unique<synthetic>(o, first_seq, t);
      }
      last_seq = src->last_seq();
      started = clk::now();
      if (!o.quiet) {
        std::fprintf(stderr, "connected: feed %s resumes after %llu; sending seq %llu..%llu\n",
                     o.feed.c_str(), static_cast<unsigned long long>(resume),
                     static_cast<unsigned long long>(first_seq),
                     static_cast<unsigned long long>(last_seq));
      }
    } else if (!o.quiet) {
      std::fprintf(stderr, "\nreconnected: resuming after %llu\n",
                   static_cast<unsigned long long>(resume));
    }
    st.acked.store(std::max(resume, st.acked.load()));
    st.broken.store(false);
    lag.acked(resume);
    lag.forget_unacked();

    std::thread acks([&]() mutable {
      line_reader r = std::move(rd);
      while (auto line = r.next()) {
        if (auto a = number_after(*line, "{\"ack\":")) {
          st.acked.store(*a);
          lag.acked(*a);
        } else if (line->find("\"reject\"") != std::string::npos) {
          st.rejects.fetch_add(1);
          std::lock_guard lock(st.print_mu);
          if (!o.quiet && st.rejects_printed++ < 10) std::fprintf(stderr, "\n%s\n", line->c_str());
        } else if (line->find("\"error\"") != std::string::npos) {
          st.error_reply.store(true);
          std::fprintf(stderr, "\n%s\n", line->c_str());
        }
      }
      st.broken.store(true);
    });

    std::string buf;
    buf.reserve(1 << 20);
    std::uint64_t seq = resume + 1;
    auto last_progress = clk::now();
    bool ok = true;
    while (seq <= last_seq && !st.broken.load()) {
      if (o.rate > 0) {
        double due = static_cast<double>(seq - first_seq) / o.rate;
        auto until =
            started + std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(due));
        if (until > clk::now()) std::this_thread::sleep_until(until);
      }
      buf.clear();
      std::size_t batch =
          o.rate > 0 ? std::max<std::size_t>(1, static_cast<std::size_t>(o.rate / 1000)) : 4096;
      const std::uint64_t from = seq;
      for (std::size_t i = 0; i < batch && seq <= last_seq; ++i) src->append(seq++, buf);
      if (first_byte == clk::time_point{}) first_byte = clk::now();
      // Timed from before the write (an ack may come back before write_all returns).
      lag.sent(seq - 1, seq - from);
      if (!c->write_all(buf.data(), buf.size())) {
        ok = false;
        break;
      }
      bytes_sent += buf.size();
      if (o.progress && clk::now() - last_progress > std::chrono::milliseconds(500)) {
        last_progress = clk::now();
        double secs = std::chrono::duration<double>(last_progress - first_byte).count();
        std::fprintf(stderr, "\rsent %llu  acked %llu  %.0f rec/s  rejects %llu   ",
                     static_cast<unsigned long long>(seq - 1),
                     static_cast<unsigned long long>(st.acked.load()),
                     static_cast<double>(seq - first_seq) / std::max(secs, 1e-9),
                     static_cast<unsigned long long>(st.rejects.load()));
      }
    }
    if (ok && !st.broken.load()) {
      c->shutdown_write();  // no more records: simcapd acks the rest and closes
      auto deadline = clk::now() + std::chrono::duration_cast<clk::duration>(
                                       std::chrono::duration<double>(o.timeout));
      while (st.acked.load() < last_seq && !st.broken.load() && clk::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    c->shutdown_both();
    acks.join();
    c.reset();
    if (st.error_reply.load()) return 1;
    if (st.acked.load() >= last_seq) {
      done = true;
    } else if (++attempts > o.reconnects) {
      std::fprintf(stderr, "\nsimcap-feed: gave up after %d reconnects (acked %llu of %llu)\n",
                   o.reconnects, static_cast<unsigned long long>(st.acked.load()),
                   static_cast<unsigned long long>(last_seq));
      return 1;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  double secs = std::chrono::duration<double>(
                    clk::now() - (first_byte == clk::time_point{} ? started : first_byte))
                    .count();
  std::uint64_t n = last_seq >= first_seq ? last_seq - first_seq + 1 : 0;
  if (o.progress) std::fprintf(stderr, "\n");
  // How long a record waited for its durable ack (the replay window after a crash); the
  // summary line stays the last (scripts read it with tail -1).
  std::printf("ack lag p50 %.0f ms, p99 %.0f ms, max %.0f ms\n", lag.quantile(0.5),
              lag.quantile(0.99), lag.quantile(1.0));
  std::printf("records %llu acked up to %llu, rejects %llu, %.3f s, %.0f records/s, %.1f MB/s\n",
              static_cast<unsigned long long>(n), static_cast<unsigned long long>(st.acked.load()),
              static_cast<unsigned long long>(st.rejects.load()), secs,
              static_cast<double>(n) / secs, static_cast<double>(bytes_sent) / secs / 1e6);
  return 0;
}
