#include "durability/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <cstdarg>
#include <cstdio>
#include <stdexcept>
#include <system_error>

namespace simcap::detail {

namespace {

// RocksDB's info log through simcap's logger: RocksDB's own LOG file would be written on the data
// disk, and on a full disk its writer fails (and, in Debian's builds, trips an assertion).
class rocksdb_to_spdlog final : public rocksdb::Logger {
 public:
  rocksdb_to_spdlog() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    std::vsnprintf(buf, sizeof buf, format, ap);
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      spdlog::error("store: {}", buf);
    } else {
      spdlog::warn("store: {}", buf);
    }
  }
};

}  // namespace

rocksdb::Options store::options() const {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.paranoid_checks = true;
  o.info_log = std::make_shared<rocksdb_to_spdlog>();
  // A torn or corrupt WAL record ends recovery there: the state is that of the last whole
  // checkpoint before it, never part of one.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Checkpoints write many keys at once and the memtable is read only at recovery: an
  // append-only vector memtable takes a batch far faster than a skip list.
  o.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  o.allow_concurrent_memtable_write = false;
  // Small memtables: after a crash, recovery replays at most about this much WAL.
  o.write_buffer_size = 32 << 20;
  o.max_write_buffer_number = 2;
  o.max_background_jobs = 2;
  // Values are mostly blobs of SIM slots written a few times a second: compressing them would
  // cost more CPU than the disk it saves.
  o.compression = rocksdb::kNoCompression;
  // The big values (SIM blobs) go to blob files: compactions move their keys, not their bytes,
  // and a blob file is deleted once no key points into it (a new base drops the deltas before
  // it). No blob garbage collection: it would copy blobs that are about to be dropped anyway.
  o.enable_blob_files = true;
  o.min_blob_size = 4096;
  o.blob_file_size = 64 << 20;
  o.enable_blob_garbage_collection = false;
  // Files are written in pieces of at most this size (WAL, tables, blob files: blobs are cut
  // below it too): copying into the page cache runs in the kernel, where the writing thread is
  // not preempted, and a multi-megabyte write would hold a core away from the query threads.
  o.writable_file_max_buffer_size = 256 << 10;
  o.avoid_flush_during_shutdown = true;
  o.max_total_wal_size = 96 << 20;
  rocksdb::BlockBasedTableOptions t;
  t.block_size = 16 << 10;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // Flushes and compactions yield to ingest and queries.
  o.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::HIGH, rocksdb::CpuPriority::kLow);
  o.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow);
  return o;
}

bool store::open_writable(std::string& error) {
  rocksdb::DB* db = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(options(), dir_.string(), &db);
  if (!st.ok()) {
    error = st.ToString();
    return false;
  }
  db_.reset(db);
  writable_ = true;
  open_error_.clear();
  return true;
}

store::store(const std::filesystem::path& dir) : dir_(dir) {
  if (open_writable(open_error_)) return;
  // A store that cannot be opened for writing (no room for its new log and manifest) is still
  // read: simcapd starts with its state, not ready and acknowledging nothing, until it can write.
  rocksdb::DB* db = nullptr;
  rocksdb::Status st = rocksdb::DB::OpenForReadOnly(options(), dir.string(), &db);
  if (!st.ok()) throw std::runtime_error("store " + dir.string() + ": " + open_error_);
  db_.reset(db);
  open_error_ = "cannot open for writing: " + open_error_;
}

store::~store() {
  if (db_) db_->Close();
}

bool store::recover_writes() {
  // RocksDB clears its background error only with room for a whole memtable to spare; reopening
  // (the WAL replayed, a torn tail dropped) needs only room for what it writes.
  if (writable_ && db_ && db_->Resume().ok()) return true;
  std::unique_lock lock(open_mu_);
  if (db_) db_->Close();
  db_.reset();
  writable_ = false;
  std::string why;
  if (open_writable(why)) return true;
  // Still read: queries of what is stored go on while it cannot write.
  rocksdb::DB* db = nullptr;
  rocksdb::Status st = rocksdb::DB::OpenForReadOnly(options(), dir_.string(), &db);
  if (st.ok()) {
    db_.reset(db);
    open_error_ = "cannot open for writing: " + why;
  } else {
    open_error_ = "cannot open: " + why + "; read-only: " + st.ToString();
  }
  return false;
}

// Throws when a failed reopen left the store closed.
rocksdb::DB& store::open_db() const {
  if (!db_) throw std::runtime_error("store " + dir_.string() + " is closed: " + open_error_);
  return *db_;
}

std::uint64_t store::free_bytes() const {
  struct statvfs fs {};
  if (::statvfs(dir_.c_str(), &fs) != 0) return 0;
  return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

namespace {
rocksdb::Slice slice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// Replays one batch's writes into another.
struct copy_into final : rocksdb::WriteBatch::Handler {
  explicit copy_into(rocksdb::WriteBatch& b) : into(b) {}
  rocksdb::Status PutCF(std::uint32_t, const rocksdb::Slice& k, const rocksdb::Slice& v) override {
    return into.Put(k, v);
  }
  rocksdb::Status DeleteCF(std::uint32_t, const rocksdb::Slice& k) override {
    return into.Delete(k);
  }
  rocksdb::Status DeleteRangeCF(std::uint32_t, const rocksdb::Slice& b,
                                const rocksdb::Slice& e) override {
    return into.DeleteRange(b, e);
  }
  rocksdb::WriteBatch& into;
};
}  // namespace

write_batch::write_batch() : b_(std::make_unique<rocksdb::WriteBatch>()) {}
write_batch::~write_batch() = default;
write_batch::write_batch(write_batch&&) noexcept = default;
write_batch& write_batch::operator=(write_batch&&) noexcept = default;

void write_batch::put(std::string_view key, std::string_view value) {
  b_->Put(slice(key), slice(value));
}
void write_batch::del(std::string_view key) { b_->Delete(slice(key)); }
void write_batch::del_range(std::string_view from, std::string_view to) {
  b_->DeleteRange(slice(from), slice(to));
}
void write_batch::append(const write_batch& other) {
  copy_into c(*b_);
  rocksdb::Status st = other.b_->Iterate(&c);
  if (!st.ok()) throw std::runtime_error("store batch: " + st.ToString());
}
std::size_t write_batch::count() const { return static_cast<std::size_t>(b_->Count()); }
std::size_t write_batch::data_size() const { return b_->GetDataSize(); }
void write_batch::set_save_point() { b_->SetSavePoint(); }
void write_batch::rollback_to_save_point() { b_->RollbackToSavePoint(); }

void store::write(write_batch& batch) {
  rocksdb::WriteOptions w;
  w.sync = true;
  std::shared_lock lock(open_mu_);
  rocksdb::Status st = open_db().Write(w, batch.b_.get());
  if (!st.ok()) throw std::runtime_error("store write: " + st.ToString());
}

void store::scan(std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& f) const {
  scan_from(prefix, prefix, false, f);
}

void store::scan_from(std::string_view prefix, std::string_view from, bool from_floor,
                      const std::function<bool(std::string_view, std::string_view)>& f) const {
  rocksdb::ReadOptions r;
  r.verify_checksums = true;
  r.fill_cache = false;
  std::shared_lock lock(open_mu_);
  std::unique_ptr<rocksdb::Iterator> it(open_db().NewIterator(r));
  const rocksdb::Slice start(from.data(), from.size());
  if (from_floor) {
    it->SeekForPrev(start);
    if (!it->Valid() || !std::string_view(it->key().data(), it->key().size()).starts_with(prefix))
      it->Seek(start);
  } else {
    it->Seek(start);
  }
  for (; it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    std::string_view key(k.data(), k.size());
    if (!key.starts_with(prefix)) break;
    rocksdb::Slice v = it->value();
    if (!f(key, std::string_view(v.data(), v.size()))) break;
  }
  if (!it->status().ok()) throw std::runtime_error("store read: " + it->status().ToString());
}

bool store::get(std::string_view key, std::string& value) const {
  std::shared_lock lock(open_mu_);
  rocksdb::Status st =
      open_db().Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
  if (st.IsNotFound()) return false;
  if (!st.ok()) throw std::runtime_error("store read: " + st.ToString());
  return true;
}

std::uint64_t store::disk_bytes() const {
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

}  // namespace simcap::detail
