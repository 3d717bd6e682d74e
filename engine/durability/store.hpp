#pragma once
// The embedded store under --data-dir: RocksDB. A checkpoint is one WriteBatch written with
// sync, so it is atomic; RocksDB checksums every WAL record and every table block, and recovery
// stops at the first torn or corrupt WAL record (point-in-time recovery), so a checkpoint is
// either there whole or not at all.
//
// Keys: durability/keys.hpp. This file and store.cpp are the only ones that see RocksDB.
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Iterator;
class WriteBatch;
struct Options;
}  // namespace rocksdb

namespace simcap::detail {

// The writes of one checkpoint, applied atomically by store::write.
class write_batch {
 public:
  write_batch();
  ~write_batch();
  write_batch(write_batch&&) noexcept;
  write_batch& operator=(write_batch&&) noexcept;

  void put(std::string_view key, std::string_view value);
  // A value given in pieces, put as their concatenation (without making it first).
  void put(std::string_view key, std::initializer_list<std::string_view> value);
  void del(std::string_view key);
  // Deletes the keys in [from, to).
  void del_range(std::string_view from, std::string_view to);
  // The same in the record-id family (the store's second column family: record ids are read
  // point by point while they are written, which the default family's vector memtable is not
  // made for).
  void put_id(const class store& st, std::string_view key, std::string_view value);
  void del_range_id(const class store& st, std::string_view from, std::string_view to);
  // Adds other's writes after this batch's own (in their order).
  void append(const write_batch& other);
  // Makes room for `bytes` more, so that what is added next does not move the batch as it
  // grows (a checkpoint's batch is tens of MB at full ingest). Before any save point.
  void reserve(std::size_t bytes);
  std::size_t count() const;
  std::size_t data_size() const;
  // Bytes it can hold before it grows; clear() empties it and keeps them.
  std::size_t capacity() const;
  void clear();
  // A failed write takes back what was added since the save point.
  void set_save_point();
  void rollback_to_save_point();

 private:
  friend class store;
  std::unique_ptr<rocksdb::WriteBatch> b_;
  rocksdb::ColumnFamilyHandle* ids_ = nullptr;  // of the store open when put_id was called
};

// One iterator over the store's default family, for a reader that seeks many times (an
// iterator sorts the unflushed writes once, when it is made: scan() makes one a call). Lives
// inside store::walk only.
class store_cursor {
 public:
  explicit store_cursor(rocksdb::Iterator& it) : it_(it) {}
  // To the first key >= key.
  void seek(std::string_view key);
  // To the last key <= key when it begins with prefix, else to the first key >= key (the value
  // that holds an id, for keys by first id).
  void seek_floor(std::string_view key, std::string_view prefix);
  bool valid() const;
  void next();
  std::string_view key() const;
  std::string_view value() const;

 private:
  rocksdb::Iterator& it_;
};

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

  // Called by the thread that writes (the checkpointer), or before it starts.
  bool writable() const noexcept { return writable_; }
  const std::string& open_error() const noexcept { return open_error_; }
  // After a failed write (or a read-only start): makes the store writable again if it can be
  // (closes it and reopens it read-write); false while it cannot. A reopen that fails for want
  // of resources (no file descriptors, no memory) leaves the store closed until a later call
  // opens it: reads throw meanwhile, nothing is lost, and the caller tries again. Never throws.
  // Reads from other threads wait for the reopen.
  bool recover_writes();
  // Bytes free on the store's file system (statvfs), for deciding when to try again.
  std::uint64_t free_bytes() const;

  // Writes the batch atomically and durably (WAL fsync). Throws on failure (the store closed
  // by a failed reopen included).
  void write(write_batch& batch);
  // Calls f(key, value) for every key starting with prefix, in key order; f returns false to stop.
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& f) const;
  // Like scan, from the key `from` on; with from_floor, from the last key <= from instead when
  // one has the prefix (the value that holds an id, for keys by first id).
  void scan_from(std::string_view prefix, std::string_view from, bool from_floor,
                 const std::function<bool(std::string_view, std::string_view)>& f) const;
  bool get(std::string_view key, std::string& value) const;
  // Calls f with a cursor over the default family (reads wait for a reopen meanwhile).
  void walk(const std::function<void(store_cursor&)>& f) const;
  // Like scan, in the record-id family (nothing when the store has none: opened read-only
  // from an older version).
  void scan_ids(std::string_view prefix,
                const std::function<bool(std::string_view, std::string_view)>& f) const;
  // Adds entries to the record-id family as one table file, outside any checkpoint: f calls
  // add(key, value) for each, in ascending key order; the file is synced and in the store when
  // this returns "" (or why it could not: nothing is added then). Unflushed writes of the
  // family that overlap the file's keys are flushed first, while writes go on. Any thread; a
  // reopen waits for it.
  using add_fn = std::function<void(std::string_view, std::string_view)>;
  std::string ingest_ids(const std::function<void(const add_fn&)>& f) const;
  // Bytes of the store's files on disk.
  std::uint64_t disk_bytes() const;

 private:
  friend class write_batch;
  rocksdb::Options options() const;
  bool open_writable(std::string& error);
  bool open_read_only(std::string& error);
  void close();
  rocksdb::DB& open_db() const;

  std::filesystem::path dir_;
  // Shared by the reads (any thread) and the write; held exclusively while recover_writes()
  // closes and reopens db_ (null when a reopen failed).
  mutable std::shared_mutex open_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* ids_ = nullptr;  // the record-id family (db_ owns it)
  bool writable_ = false;
  std::string open_error_;
  mutable std::mutex ingest_mu_;                      // one ingest_ids at a time
  mutable std::atomic<std::uint64_t> files_made_{0};  // names the files ingest_ids writes
};

}  // namespace simcap::detail
