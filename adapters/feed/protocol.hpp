#pragma once
// The feed protocol's lines (API.md "Feed protocol"), as pure functions: the hello a feed opens
// with, and the welcome, ack, reject and error lines simcap answers with.
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "simcap/reason.hpp"

namespace simcap::feed_protocol {

struct hello {
  std::string feed;
  std::string token;
};
// {"hello":{"feed":"NAME","token":"SECRET"}}, or why not (the bad_hello message).
std::expected<hello, std::string> parse_hello(std::string_view line);

// {"welcome":{"feed":NAME,"resume_after":SEQ}}\n
std::string welcome_line(std::string_view feed, std::uint64_t resume_after);
// {"ack":SEQ}\n
void append_ack(std::string& out, std::uint64_t seq);

struct reject {
  std::optional<std::uint64_t> seq;  // none when the line did not parse far enough
  reject_reason reason;
  std::string detail;
};
// {"reject":{"seq":SEQ|null,"reason":...,"detail":...}}\n
void append_reject(std::string& out, const reject& r);

}  // namespace simcap::feed_protocol
