// The embedded store on its own: a write that fails for want of file descriptors (EMFILE, as
// when idle sockets use up the process's limit) leaves it failed only until descriptors are
// free again; a reopen that cannot open the files either is retried, never thrown. The same
// for a full disk, and a batch given room keeps what was put in it before.
#include "durability/store.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "sanitizers.hpp"
#include "small_disk.hpp"

namespace simcap::testing {
namespace {

namespace fs = std::filesystem;

// Lowers the process's open-file limit below the descriptors it has (only stdin, stdout and
// stderr stay usable), as when idle sockets have used it all up; restores it when it goes.
class no_descriptor_left {
 public:
  no_descriptor_left() {
    EXPECT_EQ(::getrlimit(RLIMIT_NOFILE, &saved_), 0);
    rlimit low = saved_;
    low.rlim_cur = 3;
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    EXPECT_LT(::open("/dev/null", O_RDONLY | O_CLOEXEC), 0);
    EXPECT_EQ(errno, EMFILE);
  }
  ~no_descriptor_left() { release(); }
  void release() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

 private:
  rlimit saved_{};
};

TEST(Store, RunningOutOfFileDescriptorsIsRetriedNotFatal) {
  // A sanitizer's runtime opens files of its own (/proc/self/maps, its symbolizer) and fails
  // its own checks without them: this one runs in the plain build.
  if (kSanitized) GTEST_SKIP() << "needs file descriptors the sanitizer runtime would use";
  const fs::path dir = fs::temp_directory_path() / ("simcap-store-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    detail::store st(dir);
    ASSERT_TRUE(st.writable());
    detail::write_batch first;
    first.put("k0", "before");
    st.write(first);

    // With no descriptor left, the store cannot start a new log or table file: keep writing
    // until a write fails (the memtable fills at 32 MiB and must be switched).
    const std::string value(1 << 20, 'v');
    no_descriptor_left taken;
    int written = 0;
    bool failed = false;
    for (; written < 200 && !failed; ++written) {
      detail::write_batch b;
      std::string key = std::to_string(written + 1);
      key.insert(0, 1, 'k');  // (not "k" + ...: GCC 12's -Wrestrict misfires on that)
      b.put(key, value);
      try {
        st.write(b);
      } catch (const std::exception&) {
        failed = true;
      }
    }
    ASSERT_TRUE(failed) << "200 MiB were written with no file descriptor free";
    // Recovery cannot open the files either: it says so and is tried again, it does not throw.
    bool recovered = true;
    EXPECT_NO_THROW(recovered = st.recover_writes());
    EXPECT_FALSE(recovered);
    EXPECT_NO_THROW(recovered = st.recover_writes());
    EXPECT_FALSE(recovered);
    EXPECT_FALSE(st.open_error().empty());
    // Not even read-only: reads say why instead of reading a closed database.
    std::string v;
    EXPECT_THROW(st.get("k0", v), std::runtime_error);
    detail::write_batch during;
    during.put("k-during", "x");
    EXPECT_THROW(st.write(during), std::runtime_error);

    // Descriptors free again: the store writes, and what was written before is there.
    taken.release();
    ASSERT_TRUE(st.recover_writes()) << st.open_error();
    EXPECT_TRUE(st.writable());
    detail::write_batch after;
    after.put("k-after", "after");
    st.write(after);
    ASSERT_TRUE(st.get("k0", v));
    EXPECT_EQ(v, "before");
    ASSERT_TRUE(st.get("k1", v));
    EXPECT_EQ(v.size(), value.size());
    ASSERT_TRUE(st.get("k-after", v));
    EXPECT_EQ(v, "after");
  }
  // And it opens again after a restart with the same keys.
  {
    detail::store st(dir);
    std::string v;
    ASSERT_TRUE(st.get("k-after", v));
    EXPECT_EQ(v, "after");
  }
  fs::remove_all(dir);
}

// A batch given room after some writes keeps them, in both families and in their order (a
// put then a delete of the same key stays deleted), and what is added after goes in too.
TEST(Store, ABatchGivenRoomKeepsTheWritesMadeBefore) {
  const fs::path dir =
      fs::temp_directory_path() / ("simcap-store-reserve-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    detail::store st(dir);
    ASSERT_TRUE(st.writable());
    detail::write_batch b;
    b.put("a", "1");
    b.put("gone", "x");
    b.del("gone");
    b.put_id(st, "id-1", "f");
    b.reserve(8 << 20);
    b.put("b", std::string(1 << 20, 'v'));
    b.put_id(st, "id-2", "g");
    EXPECT_EQ(b.count(), 6u);
    st.write(b);
    std::string v;
    ASSERT_TRUE(st.get("a", v));
    EXPECT_EQ(v, "1");
    EXPECT_FALSE(st.get("gone", v));
    ASSERT_TRUE(st.get("b", v));
    EXPECT_EQ(v.size(), std::size_t{1} << 20);
    std::vector<std::string> ids;
    st.scan_ids("id-", [&](std::string_view k, std::string_view value) {
      ids.push_back(std::string(k) + "=" + std::string(value));
      return true;
    });
    EXPECT_EQ(ids, (std::vector<std::string>{"id-1=f", "id-2=g"}));
  }
  fs::remove_all(dir);
}

// A batch emptied after its write keeps its room for the next (a checkpoint's batch is reused),
// and is written as a new one; a value put in pieces is their concatenation.
TEST(Store, AClearedBatchKeepsItsRoomAndAValueInPiecesIsWhole) {
  const fs::path dir =
      fs::temp_directory_path() / ("simcap-store-clear-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  {
    detail::store st(dir);
    ASSERT_TRUE(st.writable());
    detail::write_batch b;
    b.reserve(4 << 20);
    const std::size_t room = b.capacity();
    EXPECT_GE(room, std::size_t{4} << 20);
    b.put("a", std::string(3 << 20, 'x'));
    b.put_id(st, "id-1", "f");
    st.write(b);
    b.clear();
    EXPECT_EQ(b.count(), 0u);
    EXPECT_EQ(b.capacity(), room);
    b.reserve(2 << 20);
    EXPECT_EQ(b.capacity(), room) << "room enough: nothing made again";
    const std::uint32_t head = 7;
    b.put("p", {std::string_view(reinterpret_cast<const char*>(&head), 4), "", "tail"});
    st.write(b);
    std::string v;
    ASSERT_TRUE(st.get("p", v));
    EXPECT_EQ(v, std::string(reinterpret_cast<const char*>(&head), 4) + "tail");
    ASSERT_TRUE(st.get("a", v));
    EXPECT_EQ(v.size(), std::size_t{3} << 20) << "the first write stays";
    std::size_t ids = 0;
    st.scan_ids("id-", [&](std::string_view, std::string_view) { return ++ids > 0; });
    EXPECT_EQ(ids, 1u);
  }
  fs::remove_all(dir);
}

// A disk that fills up three times: each time writes go on until one fails (the disk full
// under the log, past what RocksDB had set aside for it), and the one that failed is not there
// afterwards; once there is room the store writes again, keeping what it wrote before. (RocksDB
// 7.8, left to resume by itself once its disk had room, wrote on to the log whose append had
// failed: Debian's build then aborts the process.)
TEST(Store, WritesGoOnOnceAFullDiskHasRoomAndAFailedWriteIsNotThere) {
  const fs::path dir =
      fs::temp_directory_path() / ("simcap-store-full-" + std::to_string(::getpid()));
  small_disk disk(dir, 256);
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a 256 MB tmpfs (the full disk)";
  const fs::path at = disk.dir() / "store";
  const std::string value(1 << 20, 'v');
  const auto key = [](int round, int n) {
    std::string k(1, 'r');  // (appended: GCC 12's -Wrestrict misfires on "r" + ...)
    k.append(std::to_string(round)).append(1, '-').append(std::to_string(n));
    return k;
  };
  std::vector<int> written;  // per round, the writes before the one that failed
  {
    detail::store st(at);
    ASSERT_TRUE(st.writable());
    for (int round = 0; round < 3; ++round) {
      SCOPED_TRACE("round " + std::to_string(round));
      const fs::path filler = disk.fill();
      int n = 0;
      for (bool failed = false; !failed && n < 256;) {
        detail::write_batch b;
        b.put(key(round, n), value);
        try {
          st.write(b);
          ++n;
        } catch (const std::exception&) {
          failed = true;
        }
      }
      ASSERT_LT(n, 256) << "256 MB written on a full disk of 256 MB";
      written.push_back(n);
      fs::remove(filler);
      ASSERT_TRUE(st.recover_writes()) << st.open_error();
      detail::write_batch after;
      after.put(key(round, -1), "written");
      st.write(after);
    }
  }
  // After a restart: everything written is there, and no write that failed.
  detail::store st(at);
  std::string v;
  for (int round = 0; round < 3; ++round) {
    for (int n = 0; n < written[round]; ++n) EXPECT_TRUE(st.get(key(round, n), v)) << key(round, n);
    EXPECT_FALSE(st.get(key(round, written[round]), v)) << key(round, written[round]);
    EXPECT_TRUE(st.get(key(round, -1), v)) << "the write after round " << round;
  }
}

}  // namespace
}  // namespace simcap::testing
