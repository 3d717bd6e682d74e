#pragma once
// The embedded store under --data-dir: RocksDB. A checkpoint is one WriteBatch written with
// sync, so it is atomic; RocksDB checksums every WAL record and every table block, and recovery
// stops at the first torn or corrupt WAL record (point-in-time recovery), so a checkpoint is
// either there whole or not at all.
//
// Keys (first byte the kind; numbers big-endian, so a kind's keys sort by them):
//   M                               meta: checkpoint number, shard count, clock time
//   P product(u16)                  a product of the catalog
//   E id(u64)                       a checkpoint's events (64 bytes each), from this id on
//   G shard(u16)                    the shard's last complete base (its generation)
//   B shard(u16) gen(u64) n(u32)    slice n of a base: every SIM of the slice
//   Z shard(u16) checkpoint(u64) n(u32)  the SIMs a checkpoint changed (usage only, or whole)
//   Y shard(u16) product(u16) sim(u64) day(u32)  bytes of one closed day of the SIM's current period
//   H shard(u16) product(u16)       the shard's period and hourly usage of a product
//   C shard(u16) product(u16) start(u64)           a closed period's header in the shard
//   L shard(u16) product(u16) start(u64) sim(u64)  one SIM's line of a closed period
//   R shard(u16) product(u16) sim(u64)             a released and re-imported SIM's earlier
//                                                  life in the product's current period
//   N                               the country list (2 letters each; SIMs keep an index of it)
//   D shard(u16) newest(u64) checkpoint(u64)       record-id fingerprints added in a checkpoint
//   W shard(u16) feed name          the feed's highest seq applied by the shard
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace simcap::detail {

class store {
 public:
  // Opens (creating when absent) the store in dir. When it cannot be opened for writing (a full
  // disk) but holds a store, it is opened read-only (writable() false, open_error() says why);
  // throws std::runtime_error when it cannot be read either. RocksDB's own log goes to simcap's
  // logger, never to a file on the data disk.
  explicit store(const std::filesystem::path& dir);
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  bool writable() const noexcept { return writable_; }
  const std::string& open_error() const noexcept { return open_error_; }
  // After a failed write (or a read-only start): makes the store writable again if it can be
  // (reopens it read-write, or clears RocksDB's background error); false while it cannot.
  bool recover_writes();
  // Bytes free on the store's file system (statvfs), for deciding when to try again.
  std::uint64_t free_bytes() const;

  // Writes the batch atomically and durably (WAL fsync). Throws on failure.
  void write(rocksdb::WriteBatch& batch);
  // Calls f(key, value) for every key starting with prefix, in key order; f returns false to stop.
  void scan(std::string_view prefix, const std::function<bool(std::string_view, std::string_view)>& f) const;
  bool get(std::string_view key, std::string& value) const;
  // Bytes of the store's files on disk.
  std::uint64_t disk_bytes() const;

 private:
  rocksdb::Options options() const;
  bool open_writable(std::string& error);

  std::filesystem::path dir_;
  std::unique_ptr<rocksdb::DB> db_;
  bool writable_ = false;
  std::string open_error_;
};

}  // namespace simcap::detail
