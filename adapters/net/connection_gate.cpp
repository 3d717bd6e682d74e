#include "net/connection_gate.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/error.hpp>
#include <cerrno>

namespace simcap {

std::optional<connection_gate::ticket> connection_gate::admit() {
  std::size_t n = open_.load(std::memory_order_relaxed);
  do {
    if (n >= max_) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
  } while (!open_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return ticket(this);
}

std::chrono::milliseconds connection_gate::accept_failed(const boost::system::error_code& ec) {
  accept_errors_.fetch_add(1, std::memory_order_relaxed);
  const int e = ec.value();
  const bool out_of_resources = ec.category() == boost::system::system_category() &&
                                (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM);
  if (!out_of_resources) return std::chrono::milliseconds(0);
  if (backoff_.count() == 0) {
    spdlog::warn(
        "{} port: accept failed ({}) with {} connections open; accepting again with a "
        "back-off",
        port_, ec.message(), open());
    backoff_ = std::chrono::milliseconds(10);
  } else {
    backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(1000));
  }
  return backoff_;
}

std::string connection_metrics(const connection_gate& http, const connection_gate& feed) {
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n';
    for (const connection_gate* g : {&http, &feed}) {
      out += std::string(name) + "{port=\"" + (g == &http ? "http" : "feed") + "\"} " +
             std::to_string(value(*g)) + '\n';
    }
  };
  family("simcap_connections", "gauge", "Open connections, by port.",
         [](const connection_gate& g) { return g.open(); });
  family("simcap_connections_max", "gauge", "[server] max_connections, by port.",
         [](const connection_gate& g) { return g.max(); });
  family("simcap_connections_refused_total", "counter",
         "Connections closed at once: the port was at max_connections.",
         [](const connection_gate& g) { return g.refused(); });
  family("simcap_accept_errors_total", "counter",
         "Failed accepts (EMFILE and the like back the accept loop off).",
         [](const connection_gate& g) { return g.accept_errors(); });
  return out;
}

}  // namespace simcap
