#pragma once
// An email sink's client: one SMTP session a mail (RFC 5321) to the sink's relay, over TLS when
// the relay offers STARTTLS (certificate checked against the system store and the sink's
// ca_file, host name verified), else plain. Each event becomes one plain-text mail (RFC 5322)
// to its product's alert_emails, naming the SIM, the product, the usage and the limit, with a
// Message-ID made of the event id and the sink, so a repeat after a crash is recognisable.
// The relay's replies decide: 2xx delivered, 4xx and connection errors retried, 5xx parked
// (the dead letter's status is the SMTP reply code). Every session has the sink's timeout.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config.hpp"
#include "outbound/sink.hpp"

namespace simcap::outbound {

class smtp_transport final : public transport {
 public:
  smtp_transport(boost::asio::io_context& io, const sink_config& cfg, const engine& eng);
  ~smtp_transport() override;
  void post(const request& r, std::function<void(answer)> done) override;

 private:
  boost::asio::awaitable<void> exchange(request r, std::function<void(answer)> done);
  boost::asio::awaitable<answer> session(const event& e, const std::vector<std::string>& to);

  boost::asio::io_context& io_;
  const sink_config cfg_;
  const engine& eng_;
  std::string host_, port_, helo_;
  std::unique_ptr<boost::asio::ssl::context> ssl_;
};

// The mail of an event (headers and body, CRLF line ends, not yet dot-stuffed).
std::string mail_text(const event& e, const engine& eng, const std::string& from,
                      const std::vector<std::string>& to, const std::string& sink_name);

}  // namespace simcap::outbound
