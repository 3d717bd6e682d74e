#include "feed/record_parser.hpp"

#include <gtest/gtest.h>

#include "engine_fixture.hpp"

namespace simcap::testing {
namespace {

constexpr unix_seconds kNow = 1763800000;

struct collected : parse_sink {
  std::vector<usage_record> records;
  std::vector<parse_reject> rejects;
  std::string text;
  void record(const usage_record& r) override { records.push_back(r); }
  void reject(const parse_reject& r) override { rejects.push_back(r); }
  std::string_view raw(const parse_reject& r) const {
    return std::string_view(text).substr(r.line_offset, r.line_length);
  }
  std::string_view raw(const usage_record& r) const {
    return std::string_view(text).substr(r.line_offset, r.line_length);
  }
};

collected parse(std::string text, parse_options o = {}) {
  collected c;
  c.text = text;
  std::string padded = text + std::string(simdjson::SIMDJSON_PADDING, ' ');
  record_parser p(o);
  p.parse(padded.data(), 0, text.size(), kNow, c);
  return c;
}

const std::string kIccid = test_iccid_text(1);

std::string good(std::uint64_t seq, std::uint64_t up = 10, std::uint64_t down = 20) {
  return "{\"seq\":" + std::to_string(seq) + ",\"iccid\":\"" + kIccid +
         "\",\"start\":1763799700,\"end\":1763800000,\"up\":" + std::to_string(up) +
         ",\"down\":" + std::to_string(down) + ",\"mccmnc\":\"310410\",\"id\":\"pgw1-" +
         std::to_string(seq) + "\"}\n";
}

TEST(RecordParser, ParsesTheSpecExample) {
  auto c = parse(good(42, 1234, 56789));
  ASSERT_EQ(c.records.size(), 1u);
  ASSERT_TRUE(c.rejects.empty());
  const auto& r = c.records[0];
  EXPECT_EQ(r.seq, 42u);
  EXPECT_EQ(r.sim, test_iccid(1).key());
  EXPECT_EQ(r.up, 1234u);
  EXPECT_EQ(r.down, 56789u);
  EXPECT_EQ(r.event_time, 1763800000);
  EXPECT_EQ(r.mccmnc, (6u << 24) | 310410u);
  EXPECT_NE(r.id_hash, 0u);
  EXPECT_EQ(c.raw(r), good(42, 1234, 56789).substr(0, good(42, 1234, 56789).size() - 1));
}

TEST(RecordParser, AcceptsAnyFieldOrderUnknownFieldsAndRfc3339) {
  std::string text = "{\"down\":5,\"extra\":{\"nested\":[1,2,{\"x\":null}]},\"iccid\":\"" + kIccid +
                     "\",\"end\":\"2025-11-22T08:26:40Z\",\"seq\":7,\"note\":\"hi\"}\n"
                     "{\"iccid\":\"" +
                     kIccid + "\",\"up\":3,\"start\":\"2025-11-22T10:26:40+02:00\",\"seq\":8}\n";
  auto c = parse(text);
  ASSERT_EQ(c.records.size(), 2u);
  EXPECT_TRUE(c.rejects.empty());
  EXPECT_EQ(c.records[0].down, 5u);
  EXPECT_EQ(c.records[0].event_time, 1763800000);
  EXPECT_EQ(c.records[1].up, 3u);
  EXPECT_EQ(c.records[1].event_time, 1763800000);  // start only: start is the event time
}

TEST(RecordParser, EndTimeDecidesOverStart) {
  auto c = parse("{\"seq\":1,\"iccid\":\"" + kIccid +
                 "\",\"start\":1763700000,\"end\":1763799999,\"up\":1}\n");
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(c.records[0].event_time, 1763799999);
}

struct bad_case {
  std::string line;
  reject_reason reason;
};

TEST(RecordParser, EachBadLineGetsItsReason) {
  const std::string id = "\"iccid\":\"" + kIccid + "\"";
  const bad_case cases[] = {
      {"{\"seq\":1," + id + ",\"up\":1,\"end\":1763800000", reject_reason::malformed_json},
      {"not json at all", reject_reason::malformed_json},
      {"[1,2,3]", reject_reason::malformed_json},
      {"{\"seq\":2,\"up\":1,\"end\":1763800000}", reject_reason::missing_field},
      {"{\"seq\":3," + id + ",\"end\":1763800000}", reject_reason::missing_field},
      {"{\"seq\":4," + id + ",\"up\":1}", reject_reason::missing_field},
      {"{" + id + ",\"up\":1,\"end\":1763800000}", reject_reason::missing_field},  // no seq
      {"{\"seq\":5,\"iccid\":\"890141032111185107\",\"up\":1,\"end\":1763800000}",
       reject_reason::bad_iccid},
      {"{\"seq\":6,\"iccid\":\"89014103211118510721\",\"up\":1,\"end\":1763800000}",
       reject_reason::bad_iccid},
      {"{\"seq\":7,\"iccid\":\"ABC\",\"up\":1,\"end\":1763800000}", reject_reason::bad_iccid},
      {"{\"seq\":8," + id + ",\"up\":-1,\"end\":1763800000}", reject_reason::bad_value},
      {"{\"seq\":9," + id + ",\"up\":\"12\",\"end\":1763800000}", reject_reason::bad_value},
      {"{\"seq\":10," + id + ",\"up\":1.5,\"end\":1763800000}", reject_reason::bad_value},
      {"{\"seq\":11," + id + ",\"up\":1,\"end\":\"yesterday\"}", reject_reason::bad_value},
      {"{\"seq\":12," + id + ",\"up\":1,\"start\":1763800000,\"end\":1763799000}",
       reject_reason::bad_value},
      {"{\"seq\":13," + id + ",\"up\":1,\"end\":1763800000,\"mccmnc\":\"31\"}",
       reject_reason::bad_value},
      {"{\"seq\":14," + id + ",\"up\":1,\"end\":1763900000}", reject_reason::future_time},
  };
  for (const auto& bc : cases) {
    auto c = parse(bc.line + "\n");
    ASSERT_EQ(c.records.size(), 0u) << bc.line;
    ASSERT_EQ(c.rejects.size(), 1u) << bc.line;
    EXPECT_EQ(c.rejects[0].reason, bc.reason)
        << bc.line << " -> " << to_string(c.rejects[0].reason);
    EXPECT_FALSE(c.rejects[0].detail.empty());
    EXPECT_EQ(c.raw(c.rejects[0]), bc.line);
  }
}

TEST(RecordParser, BadLinesNeverTakeGoodLinesWithThem) {
  const std::string id = "\"iccid\":\"" + kIccid + "\"";
  std::string text = good(1) + "{\"seq\":2," + id + ",\"up\":1,\"end\":17638\n" +  // unclosed
                     good(3) + "{\"seq\":4,\"iccid\":\"oops\n" +                   // open string
                     good(5) + "{\"seq\":6," + id + ",\n" + "\"up\":1,\"end\":1763800000}\n" +
                     good(7) + "{\"seq\":8} trailing\n" + good(9) + "\n   \n" + good(10);
  auto c = parse(text);
  std::vector<std::uint64_t> seqs;
  for (const auto& r : c.records) seqs.push_back(r.seq);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 3, 5, 7, 9, 10}));
  ASSERT_GE(c.rejects.size(), 5u);
  for (const auto& r : c.rejects) EXPECT_EQ(r.reason, reject_reason::malformed_json);
  // A broken line's "seq" is not trusted (it would move the feed's watermark).
  EXPECT_FALSE(c.rejects[0].seq);
  EXPECT_FALSE(c.rejects[1].seq);
}

TEST(RecordParser, OverlongLineIsRejected) {
  std::string big = "{\"seq\":2,\"iccid\":\"" + kIccid +
                    "\",\"up\":1,\"end\":1763800000,\"pad\":\"" + std::string(5000, 'x') + "\"}\n";
  auto c = parse(good(1) + big + good(3));
  ASSERT_EQ(c.records.size(), 2u);
  ASSERT_EQ(c.rejects.size(), 1u);
  EXPECT_EQ(c.rejects[0].reason, reject_reason::line_too_long);
  EXPECT_FALSE(c.rejects[0].seq);  // not parsed: no seq to trust
  EXPECT_EQ(c.rejects[0].line_length, kMaxLineBytes);
}

TEST(RecordParser, CrLfAndLastLineWithoutNewline) {
  std::string a = good(1);
  a.pop_back();
  a += "\r\n";
  std::string b = good(2);
  b.pop_back();
  auto c = parse(a + b);
  ASSERT_EQ(c.records.size(), 2u);
  EXPECT_TRUE(c.rejects.empty());
}

TEST(RecordParser, NumericIccidAndIdAreAccepted) {
  auto c = parse("{\"seq\":1,\"iccid\":" + kIccid + ",\"id\":778,\"up\":1,\"end\":1763800000}\n");
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(c.records[0].sim, test_iccid(1).key());
  EXPECT_NE(c.records[0].id_hash, 0u);
}

TEST(RecordParser, SeqNotRequiredOutsideSessions) {
  parse_options o;
  o.require_seq = false;
  auto c = parse("{\"iccid\":\"" + kIccid + "\",\"up\":1,\"end\":1763800000}\n", o);
  EXPECT_EQ(c.records.size(), 1u);
}

TEST(RecordParser, ManyLinesTakeTheFastPathAndKeepOffsets) {
  std::string text;
  for (std::uint64_t i = 1; i <= 5000; ++i) text += good(i, i, 1);
  auto c = parse(text);
  ASSERT_EQ(c.records.size(), 5000u);
  for (std::size_t i = 0; i < c.records.size(); i += 997) {
    EXPECT_EQ(c.records[i].up, i + 1);
    std::string want = good(i + 1, i + 1, 1);
    want.pop_back();
    EXPECT_EQ(c.raw(c.records[i]), want);
  }
}

TEST(RecordParser, SmsOnlyRecordsAreRecords) {
  auto c = parse("{\"seq\":1,\"iccid\":\"" + kIccid + "\",\"end\":1763800000,\"sms\":9}\n");
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(c.records[0].sms, 9u);
  EXPECT_EQ(c.records[0].up + c.records[0].down, 0u);
  auto none = parse("{\"seq\":1,\"iccid\":\"" + kIccid + "\",\"end\":1763800000}\n");
  ASSERT_EQ(none.rejects.size(), 1u);
  EXPECT_EQ(none.rejects[0].reason, reject_reason::missing_field);
}

TEST(RecordParser, BytesAboveMaxRecordBytesAreBadValue) {
  parse_options o;
  o.max_record_bytes = 1000;
  auto c = parse(good(1, 500, 500) + good(2, 500, 501) + good(3, 18446744073709551615ULL, 1), o);
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(c.records[0].seq, 1u);
  ASSERT_EQ(c.rejects.size(), 2u);
  for (const auto& r : c.rejects) EXPECT_EQ(r.reason, reject_reason::bad_value);
  EXPECT_EQ(c.rejects[0].seq, 2u);  // the record parsed: its seq is trusted
  // The default is 1 TiB: 2^64 - 1 + 1 does not wrap into a small number.
  auto d = parse(good(4, 18446744073709551615ULL, 1));
  ASSERT_EQ(d.rejects.size(), 1u);
  EXPECT_EQ(d.rejects[0].reason, reject_reason::bad_value);
}

// A seq that cannot be read never becomes a seq: not from an out-of-range number, not from a
// "seq" inside another field, not 0.
TEST(RecordParser, UnreadableSeqIsNotTrusted) {
  const std::string id = "\"iccid\":\"" + kIccid + "\",\"up\":1,\"end\":1763800000";
  for (const std::string& line :
       {"{\"seq\":18446744073709551616," + id + "}", "{\"meta\":{\"seq\":999999},\"seq\":10," + id,
        "{\"seq\":0," + id + "}", "{\"seq\":\"7\"," + id + "}"}) {
    auto c = parse(line + "\n");
    ASSERT_EQ(c.rejects.size(), 1u) << line;
    EXPECT_FALSE(c.rejects[0].seq) << line;
    EXPECT_TRUE(c.rejects[0].reason == reject_reason::bad_value ||
                c.rejects[0].reason == reject_reason::malformed_json)
        << line;
  }
  auto zero = parse("{\"seq\":0," + id + "}\n");
  EXPECT_EQ(zero.rejects[0].reason, reject_reason::bad_value);
}

// A line gets the same reason whether it comes alone or among good lines (the batch pass and
// the line-by-line pass agree).
TEST(RecordParser, AMalformedLineHasOneReasonAloneOrInABatch) {
  const std::string id = "\"iccid\":\"" + kIccid + "\"";
  const std::vector<std::string> lines = {
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000}x",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,}",
      "{\"seq\":5," + id + " \"up\":1,\"end\":1763800000}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000",
      "{\"seq\":5," + id + ",\"up\":tru,\"end\":1763800000}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000}}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"x\":[}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"x\":{\"y\":}}",
      "{\"seq\":5,\"up\":1,\"end\":1763800000," + id.substr(0, id.size() - 3),
      "{\"seq\":5," + id + ",\"up\":1,\"x\":[1,2,\"end\":1763800000}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"x\":\"\\q\"}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"x\":nul}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"x\":01}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"x\":1e}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,:1}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"x\"}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"x\":[1 2]}",
      "[1,2]",
      "\"text\"",
      "42",
      "{}",
      "{\"seq\":5}",
      "nul",
      "{\"seq\":5,,}",
      "{\"seq\":5x," + id + ",\"up\":1,\"end\":1763800000}",
      "{\"seq\":5," + id + ",\"up\":1x,\"end\":1763800000}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000x}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":\"2025-11-22T08:00:00Z}",
      "{\"seq\":5,\"iccid\":\"" + kIccid + ",\"up\":1,\"end\":1763800000}",
      "{seq:5," + id + ",\"up\":1,\"end\":1763800000}",
      "{\"seq\":5," + id + ",\"up\":1,\"end\":1763800000,\"up\":}",
      "{\"seq\":5," + id + ",\"up\":,\"end\":1763800000}",
      "{\"seq\":5," + id + ",\"end\":1763800000,\"up\":}",
      "{\"seq\":5," + id + ",\"end\":1763800000,\"down\":[1}",
  };
  for (const auto& line : lines) {
    auto alone = parse(line + "\n");
    auto batch = parse(good(1) + line + "\n" + good(9));
    auto reason = [](const collected& c) {
      return c.rejects.size() == 1 ? std::string(to_string(c.rejects[0].reason))
                                   : "rejects " + std::to_string(c.rejects.size());
    };
    EXPECT_EQ(reason(batch), reason(alone)) << line;
    EXPECT_EQ(batch.records.size(), 2u) << line;
    // Broken JSON in a field the record does not use still makes the line malformed.
    if (line.find("\"x\"") != std::string::npos) {
      EXPECT_EQ(reason(alone), "malformed_json") << line;
    }
  }
}

}  // namespace
}  // namespace simcap::testing
