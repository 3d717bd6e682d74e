#include "outbound/smtp_transport.hpp"

#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cstdio>
#include <ctime>

#include "outbound/tls_client.hpp"

namespace simcap::outbound {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// A reply: its code (0: none came) and its lines' text.
struct reply {
  unsigned code = 0;
  std::string text;
  std::string error;  // why none came
};

constexpr std::size_t kMaxReply = 64 * 1024;

template <class Stream>
asio::awaitable<reply> read_reply(Stream& s, std::string& buf) {
  reply r;
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(buf, kMaxReply), "\r\n",
                                                   asio::as_tuple(asio::use_awaitable));
    if (ec) {
      r.code = 0;
      r.error = ec == asio::error::operation_aborted ? "timeout" : ec.message();
      co_return r;
    }
    const std::string line = buf.substr(0, n - 2);
    buf.erase(0, n);
    if (line.size() < 3 || !std::isdigit(static_cast<unsigned char>(line[0])) ||
        !std::isdigit(static_cast<unsigned char>(line[1])) ||
        !std::isdigit(static_cast<unsigned char>(line[2]))) {
      r.code = 0;
      r.error = "not an SMTP reply: " + line.substr(0, 80);
      co_return r;
    }
    r.code = static_cast<unsigned>(std::stoi(line.substr(0, 3)));
    if (r.text.size() < 4096) r.text += (r.text.empty() ? "" : "\n") + line;
    if (line.size() == 3 || line[3] != '-') co_return r;
  }
}

template <class Stream>
asio::awaitable<reply> command(Stream& s, std::string& buf, const std::string& line) {
  const std::string out = line + "\r\n";
  auto [ec, n] =
      co_await asio::async_write(s, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
  if (ec) {
    reply r;
    r.error = ec.message();
    co_return r;
  }
  co_return co_await read_reply(s, buf);
}

// What the sink makes of a reply that is not the one wanted: 4xx and no reply go again, 5xx
// (and anything else) is permanent.
answer failed(const reply& r, std::string_view step) {
  answer a;
  if (r.code == 0) {
    a.error = "SMTP " + std::string(step) + ": " + (r.error.empty() ? "no reply" : r.error);
    a.verdict = outcome::retry;
    return a;
  }
  a.status = r.code;
  a.body = r.text.substr(0, 1024);
  a.error = "SMTP " + std::string(step) + ": " + r.text.substr(0, r.text.find('\n'));
  a.verdict = r.code >= 400 && r.code < 500 ? outcome::retry : outcome::park;
  return a;
}

bool offers(const reply& ehlo, std::string_view keyword) {
  std::size_t at = 0;
  while (at < ehlo.text.size()) {
    std::size_t end = ehlo.text.find('\n', at);
    if (end == std::string::npos) end = ehlo.text.size();
    std::string word = ehlo.text.substr(at + 4 > end ? end : at + 4, end - std::min(end, at + 4));
    word = word.substr(0, word.find(' '));
    for (char& c : word) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (word == keyword) return true;
    at = end + 1;
  }
  return false;
}

// After the greeting (and STARTTLS): the envelope, the mail, QUIT.
template <class Stream>
asio::awaitable<answer> deliver(Stream& s, std::string& buf, const std::string& from,
                                const std::vector<std::string>& to, const std::string& text) {
  reply r = co_await command(s, buf, "MAIL FROM:<" + from + ">");
  if (r.code / 100 != 2) co_return failed(r, "MAIL FROM");
  std::size_t accepted = 0;
  reply refused;
  for (const std::string& rcpt : to) {
    r = co_await command(s, buf, "RCPT TO:<" + rcpt + ">");
    if (r.code == 0 || r.code / 100 == 4) co_return failed(r, "RCPT TO");
    if (r.code / 100 == 2)
      ++accepted;
    else
      refused = r;  // that address is refused for good; the others still get the mail
  }
  if (accepted == 0) co_return failed(refused, "RCPT TO");
  r = co_await command(s, buf, "DATA");
  if (r.code != 354) co_return failed(r, "DATA");
  // Dot-stuffed (RFC 5321 4.5.2), then the end of the data.
  std::string data;
  data.reserve(text.size() + 8);
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find("\r\n", at);
    end = end == std::string::npos ? text.size() : end + 2;
    if (text[at] == '.') data += '.';
    data.append(text, at, end - at);
    at = end;
  }
  if (!data.ends_with("\r\n")) data += "\r\n";
  r = co_await command(s, buf, data + ".");
  if (r.code / 100 != 2) co_return failed(r, "end of data");
  co_await command(s, buf, "QUIT");  // the mail is accepted whatever QUIT gets
  answer a;
  a.status = r.code;
  a.verdict = outcome::delivered;
  co_return a;
}

std::string mb_text(std::uint64_t bytes, std::uint64_t mb) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f MB", static_cast<double>(bytes) / static_cast<double>(mb));
  return buf;
}

}  // namespace

std::string mail_text(const event& e, const engine& eng, const std::string& from,
                      const std::vector<std::string>& to, const std::string& sink_name) {
  const std::string iccid = e.sim != 0 ? iccid::from_key(e.sim).str() : std::string();
  const std::string product = eng.product_name(e.product);
  const std::uint64_t mb = eng.options().mb_bytes;
  std::string what, subject;
  switch (e.type) {
    case event_type::alert: {
      char pct[32];
      std::snprintf(pct, sizeof pct, "%g%%", e.threshold_permille / 10.0);
      what = "reached " + std::string(pct) + " of its data limit";
      subject = "SIM " + iccid + " at " + pct + " of its data limit";
      break;
    }
    case event_type::paused:
      what = e.reason == event_reason::data_limit ? "was paused: it reached its data limit"
                                                  : "was paused (" + reason_text(e) + ")";
      subject = "SIM " + iccid + " paused";
      break;
    case event_type::pool_alert: {
      char pct[32];
      std::snprintf(pct, sizeof pct, "%g%%", e.threshold_permille / 10.0);
      what = "used " + std::string(pct) + " of its data pool";
      subject = "Pool at " + std::string(pct);
      break;
    }
    case event_type::pool_exhausted:
      what = "used up its data pool";
      subject = "Pool used up";
      break;
    default:
      what = std::string(to_string(e.type)) +
             (e.reason != event_reason::none ? " (" + reason_text(e) + ")" : std::string());
      subject = (iccid.empty() ? "Product " + product : "SIM " + iccid) + ": " +
                std::string(to_string(e.type));
  }
  char date[64];
  std::tm tm{};
  const std::time_t t = static_cast<std::time_t>(e.time);
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string to_line;
  for (const std::string& a : to) to_line += (to_line.empty() ? "" : ", ") + a;
  const std::string domain = from.substr(from.find('@') + 1);
  std::string m;
  m += "From: simcap <" + from + ">\r\n";
  m += "To: " + to_line + "\r\n";
  m += "Subject: [simcap] " + subject + " (" + product + ")\r\n";
  m += "Date: " + std::string(date) + "\r\n";
  m += "Message-ID: <event-" + std::to_string(e.id) + "." + sink_name + "@" + domain + ">\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=us-ascii\r\n";
  m += "Content-Transfer-Encoding: 7bit\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "\r\n";
  m += (iccid.empty() ? "Product " + product : "SIM " + iccid + " of product " + product) + " " +
       what + ".\r\n\r\n";
  m += "SIM:          " + (iccid.empty() ? std::string("-") : iccid) + "\r\n";
  m += "Product:      " + product + "\r\n";
  m += "Usage:        " + mb_text(e.usage_bytes, mb) + " (" + std::to_string(e.usage_bytes) +
       " bytes) this period\r\n";
  m += "Data limit:   " + mb_text(e.limit_bytes, mb) + " (" + std::to_string(e.limit_bytes) +
       " bytes)\r\n";
  m += "Event:        " + std::string(to_string(e.type)) + " " + reason_text(e) + ", id " +
       std::to_string(e.id) + ", at " + format_rfc3339(e.time) + "\r\n";
  return m;
}

smtp_transport::smtp_transport(asio::io_context& io, const sink_config& cfg, const engine& eng)
    : io_(io), cfg_(cfg), eng_(eng) {
  const auto hp = split_host_port(cfg.smtp);
  host_ = hp ? hp->first : cfg.smtp;
  port_ = hp ? std::to_string(hp->second) : "25";
  char name[256] = {};
  helo_ = ::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0' ? name : "localhost";
  ssl_ = client_tls_context(cfg);
}

smtp_transport::~smtp_transport() = default;

void smtp_transport::post(const request& r, std::function<void(answer)> done) {
  asio::co_spawn(io_, exchange(r, std::move(done)), asio::detached);
}

asio::awaitable<void> smtp_transport::exchange(request r, std::function<void(answer)> done) {
  answer a;
  for (const event& e : r.events) {
    std::vector<std::string> to;
    if (auto p = eng_.get_product(eng_.product_name(e.product))) to = p->alert_emails;
    if (to.empty()) {
      a.status = 250;  // nobody to tell (the product's alert_emails were emptied meanwhile)
      a.verdict = outcome::delivered;
      continue;
    }
    a = co_await session(e, to);
    if (a.verdict != outcome::delivered) break;
  }
  done(std::move(a));
}

asio::awaitable<answer> smtp_transport::session(const event& e,
                                                const std::vector<std::string>& to) {
  beast::tcp_stream plain(io_);
  plain.expires_after(cfg_.timeout);
  tcp::resolver resolver(io_);
  auto [rec, results] =
      co_await resolver.async_resolve(host_, port_, asio::as_tuple(asio::use_awaitable));
  if (rec) co_return failed(reply{0, {}, "resolve " + host_ + ": " + rec.message()}, "connect");
  auto [cec, ep] = co_await plain.async_connect(results, asio::as_tuple(asio::use_awaitable));
  if (cec) co_return failed(reply{0, {}, cec.message()}, "connect");
  std::string buf;
  reply r = co_await read_reply(plain, buf);
  if (r.code != 220) co_return failed(r, "greeting");
  r = co_await command(plain, buf, "EHLO " + helo_);
  if (r.code / 100 == 5) r = co_await command(plain, buf, "HELO " + helo_);
  if (r.code / 100 != 2) co_return failed(r, "EHLO");
  const std::string text = mail_text(e, eng_, cfg_.from, to, cfg_.name);
  if (!offers(r, "STARTTLS")) co_return co_await deliver(plain, buf, cfg_.from, to, text);
  r = co_await command(plain, buf, "STARTTLS");
  if (r.code != 220) co_return failed(r, "STARTTLS");
  ssl::stream<beast::tcp_stream> tls(std::move(plain), *ssl_);
  if (!prepare_tls_client(tls, host_, cfg_.verify_tls))
    co_return failed(reply{0, {}, "cannot set the server name"}, "STARTTLS");
  auto [hec] =
      co_await tls.async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
  if (hec) co_return failed(reply{0, {}, "TLS handshake: " + hec.message()}, "STARTTLS");
  buf.clear();
  r = co_await command(tls, buf, "EHLO " + helo_);
  if (r.code / 100 != 2) co_return failed(r, "EHLO");
  co_return co_await deliver(tls, buf, cfg_.from, to, text);
}

}  // namespace simcap::outbound
