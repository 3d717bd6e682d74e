#include "durability/store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
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
    // Table files made outside the store (record ids, store::ingest_ids) carry no unique id for
    // RocksDB 7.8 to check against its manifest: said each time one is opened, and harmless.
    if (std::strstr(buf, "without unique ID to verify") != nullptr) return;
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      spdlog::error("store: {}", buf);
    } else {
      spdlog::warn("store: {}", buf);
    }
  }
};

// Keeps RocksDB from resuming writes by itself after a background error (its SstFileManager
// polls the disk and resumes once a full one has room). After a failed WAL append RocksDB 7.8
// resumes on the same log file when no memtable needs flushing, and the next write to that log
// trips an assertion that Debian's build keeps (the daemon aborted in one run of nine of a
// full-disk test); simcap reopens the store instead (recover_writes), on a new log.
class no_auto_resume final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }
};

}  // namespace

rocksdb::Options store::options() const {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.paranoid_checks = true;
  o.info_log = std::make_shared<rocksdb_to_spdlog>();
  o.listeners.push_back(std::make_shared<no_auto_resume>());
  o.max_bgerror_resume_count = 0;
  // A torn or corrupt WAL record ends recovery there: the state is that of the last whole
  // checkpoint before it, never part of one.
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Checkpoints write many keys at once and the memtable is read only at recovery and by reads
  // of older events and purges (each through one cursor: a cursor sorts it once, when made): an
  // append-only vector memtable takes a batch far faster than a skip list.
  o.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
  o.allow_concurrent_memtable_write = false;
  // Small memtables: after a crash, recovery replays at most about this much WAL
  // (max_total_wal_size below). Six of them, as flushes fall behind in bursts (the flush threads
  // yield to ingest, below). With two, a checkpoint that filled one while the other was still
  // being flushed stopped every write until the flush ended: 1-3 s synced writes in one run of
  // four or five at full ingest, and in most with record ids, whose family fills its memtables
  // faster. With four, RocksDB slowed writes to 16 MB/s once three waited for a flush (its
  // slowdown starts one below the number): a checkpoint's write took up to a second or two, in
  // 4 of 36 runs at full ingest and 2 of 4 with ids; with six, in none of 20 and 4.
  o.write_buffer_size = 32 << 20;
  o.max_write_buffer_number = 6;
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
  // Flushes and compactions hand their output to the disk every MiB (sync_file_range) instead
  // of leaving it dirty until the file's end: the checkpoints' synced WAL writes do not queue
  // behind tens of MB at once. Records/s 1.017× without record ids and 1.087× with them, CPU
  // per record 0.986× and 0.910× (README, "Ack lag under load").
  o.bytes_per_sync = 1 << 20;
  rocksdb::BlockBasedTableOptions t;
  t.block_size = 16 << 10;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // Flushes and compactions yield to ingest and queries.
  o.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::HIGH, rocksdb::CpuPriority::kLow);
  o.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow);
  return o;
}

namespace {

constexpr const char* kIdsFamily = "ids";

// The record-id family: written with the checkpoints and read point by point for late records,
// so a skip-list memtable, small blocks in a cache of their own and Bloom filters.
rocksdb::BlockBasedTableOptions ids_tables() {
  rocksdb::BlockBasedTableOptions t;
  t.block_size = 4 << 10;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  return t;
}

rocksdb::ColumnFamilyOptions ids_options(const rocksdb::Options& base) {
  rocksdb::ColumnFamilyOptions o(base);
  o.memtable_factory = std::make_shared<rocksdb::SkipListFactory>();
  o.write_buffer_size = 16 << 20;
  o.enable_blob_files = false;
  rocksdb::BlockBasedTableOptions t = ids_tables();
  t.block_cache = rocksdb::NewLRUCache(16 << 20);
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

// Where ingest_ids writes its files before they are added (moved) into the store.
constexpr const char* kIngestDir = "ingest";

std::vector<rocksdb::ColumnFamilyDescriptor> families_of(const rocksdb::Options& o) {
  return {{rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(o)},
          {kIdsFamily, ids_options(o)}};
}

}  // namespace

bool store::open_writable(std::string& error) {
  rocksdb::Options o = options();
  o.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = families_of(o);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status st =
      rocksdb::DB::Open(rocksdb::DBOptions(o), dir_.string(), families, &handles, &db);
  if (!st.ok()) {
    error = st.ToString();
    return false;
  }
  db_.reset(db);
  delete handles[0];  // the default family's (db_ keeps its own)
  ids_ = handles[1];
  writable_ = true;
  open_error_.clear();
  return true;
}

bool store::open_read_only(std::string& error) {
  rocksdb::Options o = options();
  std::vector<rocksdb::ColumnFamilyDescriptor> families = families_of(o);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status st =
      rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(o), dir_.string(), families, &handles, &db);
  if (!st.ok()) {
    // A store of an older version has no record-id family.
    families.pop_back();
    handles.clear();
    st =
        rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(o), dir_.string(), families, &handles, &db);
  }
  if (!st.ok()) {
    error = st.ToString();
    return false;
  }
  db_.reset(db);
  delete handles[0];
  ids_ = handles.size() > 1 ? handles[1] : nullptr;
  return true;
}

void store::close() {
  if (!db_) return;
  if (ids_ != nullptr) db_->DestroyColumnFamilyHandle(ids_);
  ids_ = nullptr;
  db_->Close();
  db_.reset();
}

store::store(const std::filesystem::path& dir) : dir_(dir) {
  // RocksDB creates a missing store directory too, but only after logging an error for it: a
  // first start would begin with an error line.
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  // Files ingest_ids wrote and had not added when the process ended: never in the store.
  std::filesystem::remove_all(dir_ / kIngestDir, ec);
  if (open_writable(open_error_)) return;
  // A store that cannot be opened for writing (no room for its new log and manifest) is still
  // read: simcapd starts with its state, not ready and acknowledging nothing, until it can write.
  std::string why;
  if (!open_read_only(why)) throw std::runtime_error("store " + dir.string() + ": " + open_error_);
  open_error_ = "cannot open for writing: " + open_error_;
}

store::~store() { close(); }

bool store::recover_writes() {
  // Reopened, never resumed (DB::Resume): a resumed RocksDB may write on to the log whose append
  // failed (see no_auto_resume). Reopening replays the log, drops a torn tail and starts a new
  // one, and needs room only for what it writes.
  std::unique_lock lock(open_mu_);
  close();
  writable_ = false;
  std::string why;
  if (open_writable(why)) return true;
  // Still read: queries of what is stored go on while it cannot write.
  std::string ro;
  if (open_read_only(ro)) {
    open_error_ = "cannot open for writing: " + why;
  } else {
    open_error_ = "cannot open: " + why + "; read-only: " + ro;
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

// Replays one batch's writes into another (family 0 is the default, any other the record ids',
// whose handle the source batch had).
struct copy_into final : rocksdb::WriteBatch::Handler {
  copy_into(rocksdb::WriteBatch& b, rocksdb::ColumnFamilyHandle* ids) : into(b), ids(ids) {}
  rocksdb::ColumnFamilyHandle* family(std::uint32_t cf) {
    if (cf != 0 && ids == nullptr) throw std::logic_error("store batch: a family without a handle");
    return cf == 0 ? nullptr : ids;
  }
  rocksdb::Status PutCF(std::uint32_t cf, const rocksdb::Slice& k,
                        const rocksdb::Slice& v) override {
    return cf == 0 ? into.Put(k, v) : into.Put(family(cf), k, v);
  }
  rocksdb::Status DeleteCF(std::uint32_t cf, const rocksdb::Slice& k) override {
    return cf == 0 ? into.Delete(k) : into.Delete(family(cf), k);
  }
  rocksdb::Status DeleteRangeCF(std::uint32_t cf, const rocksdb::Slice& b,
                                const rocksdb::Slice& e) override {
    return cf == 0 ? into.DeleteRange(b, e) : into.DeleteRange(family(cf), b, e);
  }
  rocksdb::WriteBatch& into;
  rocksdb::ColumnFamilyHandle* ids;
};
}  // namespace

write_batch::write_batch() : b_(std::make_unique<rocksdb::WriteBatch>()) {}
write_batch::~write_batch() = default;
write_batch::write_batch(write_batch&&) noexcept = default;
write_batch& write_batch::operator=(write_batch&&) noexcept = default;

void write_batch::put(std::string_view key, std::string_view value) {
  b_->Put(slice(key), slice(value));
}
void write_batch::put(std::string_view key, std::initializer_list<std::string_view> value) {
  rocksdb::Slice pieces[4];
  if (value.size() > std::size(pieces)) throw std::logic_error("store batch: too many pieces");
  int n = 0;
  for (std::string_view v : value) pieces[n++] = slice(v);
  const rocksdb::Slice k = slice(key);
  b_->Put(rocksdb::SliceParts(&k, 1), rocksdb::SliceParts(pieces, n));
}
void write_batch::del(std::string_view key) { b_->Delete(slice(key)); }
void write_batch::del_range(std::string_view from, std::string_view to) {
  b_->DeleteRange(slice(from), slice(to));
}
void write_batch::put_id(const store& st, std::string_view key, std::string_view value) {
  if (st.ids_ == nullptr) throw std::runtime_error("store: no record-id family (read-only)");
  ids_ = st.ids_;
  b_->Put(ids_, slice(key), slice(value));
}
void write_batch::del_range_id(const store& st, std::string_view from, std::string_view to) {
  if (st.ids_ == nullptr) throw std::runtime_error("store: no record-id family (read-only)");
  ids_ = st.ids_;
  b_->DeleteRange(ids_, slice(from), slice(to));
}
void write_batch::append(const write_batch& other) {
  if (other.ids_ != nullptr) ids_ = other.ids_;
  copy_into c(*b_, other.ids_);
  rocksdb::Status st = other.b_->Iterate(&c);
  if (!st.ok()) throw std::runtime_error("store batch: " + st.ToString());
}
void write_batch::reserve(std::size_t bytes) {
  if (b_->GetDataSize() + bytes <= capacity()) return;
  auto b = std::make_unique<rocksdb::WriteBatch>(b_->GetDataSize() + bytes);
  copy_into c(*b, ids_);
  rocksdb::Status st = b_->Iterate(&c);
  if (!st.ok()) throw std::runtime_error("store batch: " + st.ToString());
  b_ = std::move(b);
}
std::size_t write_batch::count() const { return static_cast<std::size_t>(b_->Count()); }
std::size_t write_batch::data_size() const { return b_->GetDataSize(); }
std::size_t write_batch::capacity() const { return b_->Data().capacity(); }
void write_batch::clear() {
  b_->Clear();
  ids_ = nullptr;
}
void write_batch::set_save_point() { b_->SetSavePoint(); }
void write_batch::rollback_to_save_point() { b_->RollbackToSavePoint(); }

void store::write(write_batch& batch) {
  rocksdb::WriteOptions w;
  w.sync = true;
  std::shared_lock lock(open_mu_);
  rocksdb::Status st = open_db().Write(w, batch.b_.get());
  if (!st.ok()) throw std::runtime_error("store write: " + st.ToString());
}

namespace {
// Calls f for each key from the iterator's position on while it has the prefix.
void visit(rocksdb::Iterator& it, std::string_view prefix,
           const std::function<bool(std::string_view, std::string_view)>& f) {
  for (; it.Valid(); it.Next()) {
    rocksdb::Slice k = it.key();
    std::string_view key(k.data(), k.size());
    if (!key.starts_with(prefix)) break;
    rocksdb::Slice v = it.value();
    if (!f(key, std::string_view(v.data(), v.size()))) break;
  }
  if (!it.status().ok()) throw std::runtime_error("store read: " + it.status().ToString());
}
}  // namespace

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
  visit(*it, prefix, f);
}

void store::walk(const std::function<void(store_cursor&)>& f) const {
  rocksdb::ReadOptions r;
  r.verify_checksums = true;
  r.fill_cache = false;
  std::shared_lock lock(open_mu_);
  std::unique_ptr<rocksdb::Iterator> it(open_db().NewIterator(r));
  store_cursor c(*it);
  f(c);
  if (!it->status().ok()) throw std::runtime_error("store read: " + it->status().ToString());
}

void store_cursor::seek(std::string_view key) { it_.Seek(rocksdb::Slice(key.data(), key.size())); }
void store_cursor::seek_floor(std::string_view key, std::string_view prefix) {
  const rocksdb::Slice k(key.data(), key.size());
  it_.SeekForPrev(k);
  if (!it_.Valid() || !this->key().starts_with(prefix)) it_.Seek(k);
}
bool store_cursor::valid() const { return it_.Valid(); }
void store_cursor::next() { it_.Next(); }
std::string_view store_cursor::key() const { return {it_.key().data(), it_.key().size()}; }
std::string_view store_cursor::value() const { return {it_.value().data(), it_.value().size()}; }

void store::scan_ids(std::string_view prefix,
                     const std::function<bool(std::string_view, std::string_view)>& f) const {
  rocksdb::ReadOptions r;
  // The first key after the prefix bounds the iterator, so that it reads no block past it.
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  rocksdb::Slice upper(end);
  if (!end.empty()) r.iterate_upper_bound = &upper;
  std::shared_lock lock(open_mu_);
  rocksdb::DB& db = open_db();
  if (ids_ == nullptr) return;
  std::unique_ptr<rocksdb::Iterator> it(db.NewIterator(r, ids_));
  it->Seek(rocksdb::Slice(prefix.data(), prefix.size()));
  visit(*it, prefix, f);
}

bool store::get(std::string_view key, std::string& value) const {
  std::shared_lock lock(open_mu_);
  rocksdb::Status st =
      open_db().Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
  if (st.IsNotFound()) return false;
  if (!st.ok()) throw std::runtime_error("store read: " + st.ToString());
  return true;
}

std::string store::ingest_ids(const std::function<void(const add_fn&)>& f) const {
  // One at a time: the disk is what they wait for, and two at once raced inside RocksDB 7.8
  // (ThreadSanitizer: a set of strings its table reader fills, shared by both).
  std::lock_guard one(ingest_mu_);
  std::shared_lock lock(open_mu_);
  if (!db_ || !writable_ || ids_ == nullptr) return "the store cannot write";
  std::error_code ec;
  std::filesystem::create_directories(dir_ / kIngestDir, ec);
  const std::string path =
      (dir_ / kIngestDir / ("ids-" + std::to_string(files_made_++) + ".sst")).string();
  rocksdb::Options o;
  o.compression = rocksdb::kNoCompression;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(ids_tables()));
  // Handed to the disk every MiB as it is written, as the store's own files are: a move's file
  // synced at its end in one go (tens of MB) made the checkpoints' synced writes wait behind it.
  o.bytes_per_sync = 1 << 20;
  // Its pages stay cached, as a flush's do: late records read it (dropped from the cache, reads
  // of new ids dated as the oldest, each probing the store on a filter's false positive, went
  // at half the rate in BM_id_window, waiting for the disk).
  rocksdb::SstFileWriter w(rocksdb::EnvOptions(rocksdb::DBOptions(o)), o, ids_,
                           /*invalidate_page_cache=*/false);
  rocksdb::Status st = w.Open(path);
  std::size_t entries = 0;
  if (st.ok()) {
    f([&](std::string_view k, std::string_view v) {
      if (!st.ok()) return;
      st = w.Put(rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size()));
      ++entries;
    });
  }
  if (st.ok() && entries == 0) {
    std::filesystem::remove(path, ec);
    return "";  // nothing to add
  }
  if (st.ok()) st = w.Finish();  // synced
  if (st.ok()) {
    rocksdb::IngestExternalFileOptions in;
    in.move_files = true;  // linked, not copied
    in.allow_blocking_flush = false;
    in.write_global_seqno = false;
    st = db_->IngestExternalFile(ids_, {path}, in);
    if (st.IsInvalidArgument() && st.ToString().find("requires flush") != std::string::npos) {
      // Ids written with the checkpoints, not yet flushed, overlap the file's keys. Adding it
      // would flush them with every write stopped (a checkpoint's write waiting behind it):
      // they are flushed first, writes going on, and the file added after (flushing then, with
      // writes stopped, only what came meanwhile, if that overlaps too).
      rocksdb::FlushOptions fo;
      fo.allow_write_stall = true;
      st = db_->Flush(fo, ids_);
      in.allow_blocking_flush = true;
      if (st.ok()) st = db_->IngestExternalFile(ids_, {path}, in);
    }
  }
  if (st.ok()) return "";
  std::filesystem::remove(path, ec);
  return st.ToString();
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
