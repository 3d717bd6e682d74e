#include "store.hpp"

#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>

#include <stdexcept>
#include <system_error>

namespace simcap::detail {

store::store(const std::filesystem::path& dir) : dir_(dir) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.paranoid_checks = true;
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
  o.keep_log_file_num = 2;
  rocksdb::BlockBasedTableOptions t;
  t.block_size = 16 << 10;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // Flushes and compactions yield to ingest and queries.
  o.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::HIGH, rocksdb::CpuPriority::kLow);
  o.env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow);
  rocksdb::DB* db = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(o, dir.string(), &db);
  if (!st.ok()) throw std::runtime_error("store " + dir.string() + ": " + st.ToString());
  db_.reset(db);
}

store::~store() {
  if (db_) db_->Close();
}

void store::write(rocksdb::WriteBatch& batch) {
  rocksdb::WriteOptions w;
  w.sync = true;
  rocksdb::Status st = db_->Write(w, &batch);
  if (!st.ok()) throw std::runtime_error("store write: " + st.ToString());
}

void store::scan(std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& f) const {
  rocksdb::ReadOptions r;
  r.verify_checksums = true;
  r.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(r));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    std::string_view key(k.data(), k.size());
    if (!key.starts_with(prefix)) break;
    rocksdb::Slice v = it->value();
    if (!f(key, std::string_view(v.data(), v.size()))) break;
  }
  if (!it->status().ok()) throw std::runtime_error("store read: " + it->status().ToString());
}

bool store::get(std::string_view key, std::string& value) const {
  rocksdb::Status st = db_->Get(rocksdb::ReadOptions(), rocksdb::Slice(key.data(), key.size()), &value);
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
