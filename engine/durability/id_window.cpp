#include "durability/id_window.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "durability/codec.hpp"
#include "durability/keys.hpp"

namespace simcap::detail {

namespace {

constexpr std::size_t kChunkEntries = 256;  // aim per chunk of a group
constexpr std::uint32_t kMaxBits = 20;
// The table grows (by four) to its budget once it is 85 % full, then starts moving entries out
// at 80 %, down to about 55 %: linear probing stays short and the moves are rare. A move looks
// at 16 slots with each insert, so the load rises by at most 1/16 before it ends; should a move
// not have ended, or a larger table not be ready, by 92 %, it is done at once.
constexpr double kMaxLoad = 0.85;
constexpr double kMoveLoad = 0.80;
constexpr double kLoadAfterMove = 0.55;
constexpr double kHardLoad = 0.92;
constexpr std::size_t kMoveStep = 16;
// Tables of this size or more are made ready on another thread.
constexpr std::size_t kPreparedBytes = std::size_t{2} << 20;
// Of the budget, the table takes three quarters; the rest is for moved entries waiting for
// their checkpoint to be written.
constexpr double kTableShare = 0.75;
constexpr std::uint64_t kMinGroup = 4096;
// Bytes of moved ids a cut writes at least, when there are some.
constexpr std::size_t kMinPartBytes = std::size_t{1} << 20;

std::uint32_t bits_for(std::uint64_t entries) {
  std::uint32_t bits = 0;
  while (bits < kMaxBits && (entries >> bits) > kChunkEntries) ++bits;
  return bits;
}

// In the stored key, a group's bits with this flag: its entries are fingerprints only (8 bytes).
// Without it (groups written before), an entry is an id_table::slot: the fingerprint and an
// event time.
constexpr std::uint32_t kFingerprintsOnly = 0x100;

bool chunk_holds(std::string_view v, std::uint64_t fp, std::size_t stride) {
  for (std::size_t at = 0; at + stride <= v.size(); at += stride) {
    std::uint64_t k;
    std::memcpy(&k, v.data() + at, sizeof k);
    if (k == fp) return true;
  }
  return false;
}

}  // namespace

id_window::id_window(std::size_t budget)
    : table_(1024),
      budget_(budget),
      max_slots_(std::max<std::size_t>(
          1024, static_cast<std::size_t>(static_cast<double>(budget) * kTableShare /
                                         sizeof(id_table::slot)))),
      epoch_inserts_(std::max<std::uint64_t>(64, max_slots_ / 16)) {
  epochs_.emplace_back();
  set_limit();
}

id_window::~id_window() = default;

void id_window::attach(const store* st, unsigned shard) noexcept {
  st_ = st;
  shard_ = shard;
  set_limit();
}

void id_window::set_limit() noexcept {
  const double load = table_.capacity() < max_slots_ || st_ == nullptr ? kMaxLoad : kMoveLoad;
  limit_ = static_cast<std::size_t>(static_cast<double>(table_.capacity()) * load);
}

namespace {
// Called often (the shards publish the window's memory): kept per part, not summed each time.
template <class Part>
std::uint64_t part_bytes(const Part& p) {
  std::uint64_t n = p.chunks->capacity() * sizeof((*p.chunks)[0]);
  for (const auto& chunk : *p.chunks) n += chunk.capacity() * sizeof(std::uint64_t);
  return n;
}

std::size_t at_load(const id_table& t, double load) {
  return static_cast<std::size_t>(static_cast<double>(t.capacity()) * load);
}
}  // namespace

std::string id_window::group_key(std::uint64_t g) const {
  return shard_key(key_kind::id_group, shard_).be(g).str();
}

std::string id_window::chunk_prefix(std::uint64_t g, std::size_t chunk) const {
  return shard_key(key_kind::id_group, shard_).be(g).be(static_cast<std::uint32_t>(chunk)).str();
}

std::string id_window::log_key(std::uint64_t checkpoint) const {
  return shard_key(key_kind::id_log, shard_).be(checkpoint).str();
}

bool id_window::insert(std::uint64_t fp, unix_seconds when) {
  const std::uint32_t t = stored_time(when);
  if (in_groups(fp, t)) return false;
  if (!insert_table(fp, t)) return false;
  if (st_ != nullptr) {
    new_ids_.push_back(fp);
    new_oldest_ = std::min(new_oldest_, t);
    new_newest_ = std::max(new_newest_, t);
  }
  return true;
}

bool id_window::in_groups(std::uint64_t fp, std::uint32_t t) {
  if (t > grouped_max_t_) return false;  // the live stream: newer than every group
  for (auto g = groups_.rbegin(); g != groups_.rend(); ++g) {
    if (t >= g->min_t && t <= g->max_t && g->filter.may_contain(fp) && in_group(*g, fp))
      return true;
  }
  return false;
}

bool id_window::insert_table(std::uint64_t fp, std::uint32_t t) {
  if (!table_.insert(fp, current_epoch())) return false;
  epoch& e = current();
  e.min_t = std::min(e.min_t, t);
  e.max_t = std::max(e.max_t, t);
  if (++e.count >= epoch_inserts_) next_epoch();
  if (move_) {
    step_move(kMoveStep);
  } else if (table_.size() > limit_) {
    make_room();
  }
  return true;
}

bool id_window::in_group(group& g, std::uint64_t fp) {
  const std::size_t c = chunk_of(fp, g.bits);
  for (const part& p : g.parts) {
    for (std::uint64_t e : (*p.chunks)[c]) {
      if (e == fp) return true;
    }
  }
  if (!g.written || st_ == nullptr) return false;
  ++store_lookups_;
  bool found = false;
  try {
    st_->scan_ids(chunk_prefix(g.no, c), [&](std::string_view, std::string_view v) {
      found = chunk_holds(v, fp, g.entry_bytes);
      return !found;
    });
  } catch (const std::exception& e) {
    if (lookup_errors_++ == 0) spdlog::warn("record ids: cannot read the store: {}", e.what());
  }
  return found;
}

id_window::group& id_window::open_group(std::uint64_t expected) {
  if (groups_.empty() || groups_.back().count + expected > groups_.back().capacity) {
    group g;
    g.no = next_group_++;
    g.capacity = std::max<std::uint64_t>({expected, max_slots_, kMinGroup});
    g.bits = bits_for(g.capacity);
    g.filter = id_filter(g.capacity);
    groups_.push_back(std::move(g));
    changed_ = true;
  }
  return groups_.back();
}

void id_window::make_room() {
  if (table_.capacity() < max_slots_ || st_ == nullptr) {
    grow();
  } else {
    start_move();
  }
}

void id_window::grow() {
  // Each growth fills a new table: by four, that is 4/3 of the last one in all, against twice
  // it by doubling. Without a store there is nowhere to move entries: memory grows.
  const std::size_t want = table_.capacity() < max_slots_
                               ? std::min(max_slots_, table_.capacity() * 4)
                               : table_.capacity() * 2;
  if (next_table_.valid()) {
    if (next_table_.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
        table_.size() < at_load(table_, kHardLoad)) {
      limit_ = table_.size() + 4096;  // look again a little later
      return;
    }
    huge_array<id_table::slot> fresh = next_table_.get();
    if (fresh.size() >= want) {
      table_.rehash(std::move(fresh));
    } else {
      table_.rehash(want);  // shrunk by a purge since it was asked for
    }
  } else {
    table_.rehash(want);
  }
  set_limit();
  prepare_next();
}

void id_window::prepare_next() {
  std::size_t n = 0;
  if (table_.capacity() < max_slots_) {
    n = std::min(max_slots_, table_.capacity() * 4);
  } else if (st_ == nullptr) {
    n = table_.capacity() * 2;
  }
  if (n * sizeof(id_table::slot) < kPreparedBytes) return;  // quick enough where it is used
  try {
    next_table_ = std::async(std::launch::async, [n] {
      huge_array<id_table::slot> a(n);
      a.populate();
      return a;
    });
  } catch (const std::system_error&) {
    // No thread to spare: the table grows on this one when it must.
  }
}

void id_window::start_move() {
  if (epochs_.size() == 1) next_epoch();  // the current epoch can go too
  // The oldest epochs, up to about the share that brings the load down.
  const auto target = static_cast<std::uint64_t>((1.0 - kLoadAfterMove / kMoveLoad) *
                                                 static_cast<double>(table_.size()));
  std::uint64_t moving = 0;
  std::size_t n = 0;
  std::uint32_t min_t = 0xffffffffu, max_t = 0;
  while (n + 1 < epochs_.size() && moving < target) {
    moving += epochs_[n].count;
    min_t = std::min(min_t, epochs_[n].min_t);
    max_t = std::max(max_t, epochs_[n].max_t);
    ++n;
  }
  group& g = open_group(moving);
  // From now on a record of these times is looked up in the group: in its filter, then in the
  // part the move fills (and what the table still holds).
  g.min_t = std::min(g.min_t, min_t);
  g.max_t = std::max(g.max_t, max_t);
  grouped_max_t_ = std::max(grouped_max_t_, g.max_t);
  part& p = g.parts.emplace_back();
  p.no = ++g.parts_made;
  p.filling = true;
  p.first_epoch = first_epoch_;
  const std::size_t chunks = std::size_t{1} << g.bits;
  if (spare_ && spare_->size() == chunks) {
    p.chunks = std::move(spare_);
    for (auto& c : *p.chunks) c.clear();
  } else {
    p.chunks = std::make_shared<chunk_list>(chunks);
  }
  spare_.reset();
  spare_bytes_ = 0;
  const std::uint64_t each = moving / chunks;
  for (auto& c : *p.chunks) c.reserve(each + each / 4 + 4);
  p.memory_bytes = part_bytes(p);
  move_ = move_state{table_.begin_extract(first_epoch_ + static_cast<std::uint32_t>(n)), n};
}

void id_window::step_move(std::size_t slots) {
  group& g = groups_.back();
  part& p = g.parts.back();
  if (table_.size() >= at_load(table_, kHardLoad)) slots = SIZE_MAX;  // no room to go slowly
  const bool done = table_.extract_step(move_->x, slots, [&](std::uint64_t fp, std::uint32_t) {
    (*p.chunks)[chunk_of(fp, g.bits)].push_back(fp);
    g.filter.add(fp);
    ++p.count;
  });
  if (!done) return;
  g.count += p.count;
  p.filling = false;
  p.memory_bytes = part_bytes(p);
  epochs_.erase(epochs_.begin(), epochs_.begin() + static_cast<std::ptrdiff_t>(move_->epochs));
  first_epoch_ += static_cast<std::uint32_t>(move_->epochs);
  move_.reset();
  changed_ = true;
  ++moves_;
  // A file's ids are in the store for good, outside any checkpoint: none may be of a record that
  // a crash could still take back (to be sent again and dropped as a repeat). So only a move of
  // ids all logged in checkpoints known written goes as a file, the usual case (the oldest third
  // of the table, seconds old at full ingest); others go with the cuts, the first of which logs
  // what they lack.
  // One file at a time: should moves come faster than their files are added, the others go with
  // the cuts, whose pace follows the ids coming in, rather than wait in RAM.
  // (Its newest epoch is first_epoch_ - 1.)
  p.as_file =
      files_ && st_ != nullptr && first_epoch_ <= logged_epoch_ && !filing() && add_as_file(g, p);
}

// A part's chunks, once in the store, serve the next move: allocated afresh, each of their
// thousands of vectors took pages the kernel had to fault in and clear as the move began (40 % of
// the shard threads' page faults at full ingest with ids).
void id_window::keep_spare(part& p) {
  if (!p.chunks || p.chunks.use_count() != 1) return;  // a file's thread still reads them
  if (spare_ && spare_->size() >= p.chunks->size()) return;
  // Within the budget, with the table and the other parts still in RAM.
  std::uint64_t used = table_.memory_bytes() + p.memory_bytes;
  for (const group& g : groups_) {
    for (const part& other : g.parts) used += &other == &p ? 0 : other.memory_bytes;
  }
  if (used > budget_) return;
  spare_ = std::move(p.chunks);
  spare_bytes_ = p.memory_bytes;
}

// A move's entries, tens of MB, written with the checkpoints went through the store's log and
// then its tables: twice, the first time in the synced write every feed's acks wait for. As a
// table file, written and synced on another thread and added to the store at once, they are
// written once and no checkpoint waits for them. Only a move whose ids are all in checkpoints
// known written gets one (step_move), so the store never holds the id of a record that a crash
// takes back. The log values of the moved ids stay until the cut that finds the file added;
// should the process end before that cut, the file's keys are in the store without the window's
// key counting them: extra entries of the group, each an id seen within the window (the logged
// ids come back into the table and move again).
bool id_window::add_as_file(const group& g, part& p) {
  std::shared_ptr<const chunk_list> chunks = p.chunks;
  try {
    p.added =
        std::async(std::launch::async, [chunks, st = st_, shard = shard_, gno = g.no, no = p.no] {
          return st->ingest_ids([&](const store::add_fn& add) {
            for (std::size_t c = 0; c < chunks->size(); ++c) {
              const std::vector<std::uint64_t>& chunk = (*chunks)[c];
              if (chunk.empty()) continue;
              add(shard_key(key_kind::id_group, shard)
                      .be(gno)
                      .be(static_cast<std::uint32_t>(c))
                      .be(no)
                      .str(),
                  std::string_view(reinterpret_cast<const char*>(chunk.data()),
                                   chunk.size() * sizeof(std::uint64_t)));
            }
          });
        });
  } catch (const std::system_error&) {
    return false;  // no thread to spare: written with the checkpoints
  }
  return true;
}

bool id_window::filing() const {
  for (const group& g : groups_) {
    for (const part& p : g.parts) {
      if (p.added.valid()) return true;
    }
  }
  return false;
}

void id_window::settle() {
  for (group& g : groups_) {
    for (part& p : g.parts) {
      if (p.added.valid()) p.added.wait();
    }
  }
}

void id_window::purge(unix_seconds when) {
  finish_move();
  const std::uint32_t h = stored_time(when);
  purged_t_ = std::max(purged_t_, h);
  if (epochs_.back().count > 0 && epochs_.back().max_t < h) next_epoch();  // all of it goes
  std::size_t n = 0;
  while (n + 1 < epochs_.size() && epochs_[n].max_t < h) ++n;
  if (n > 0) {
    table_.extract_older(first_epoch_ + static_cast<std::uint32_t>(n),
                         [](std::uint64_t, std::uint32_t) {});
    epochs_.erase(epochs_.begin(), epochs_.begin() + static_cast<std::ptrdiff_t>(n));
    first_epoch_ += static_cast<std::uint32_t>(n);
  }
  // A table far below its size after a purge gives memory back.
  if (table_.capacity() > 1024 && table_.size() * 4 < table_.capacity()) {
    table_.rehash(std::max<std::size_t>(1024, table_.size() * 2));
    next_table_ = {};  // for the table before
    spare_.reset();
    spare_bytes_ = 0;
    set_limit();
  }
  std::erase_if(groups_, [&](group& g) {
    if (g.max_t >= h || g.count == 0) return false;
    // A file still being added would bring the group's keys back after their deletion.
    for (part& p : g.parts) {
      if (!p.added.valid()) continue;
      if (p.added.get().empty()) {
        g.written = true;
        ++files_added_;
      }
    }
    if (g.written) dropped_.push_back(g.no);
    changed_ = true;
    return true;
  });
  grouped_max_t_ = 0;
  for (const group& g : groups_) grouped_max_t_ = std::max(grouped_max_t_, g.max_t);
}

void id_window::cut(write_batch& wb, std::uint64_t checkpoint, std::uint64_t durable) {
  if (st_ == nullptr) return;  // nothing is written without a store
  // A cut writes moved ids up to twice the bytes it logs (at least kMinPartBytes), the rest of a
  // move waiting for the next cuts: a move of a third of the table is tens of MB, which in one
  // checkpoint made its synced write, and the acks of every feed, wait several times as long.
  // At that pace the parts are written faster than ids arrive.
  std::size_t budget = std::max(kMinPartBytes, 2 * new_ids_.size() * sizeof(std::uint64_t));
  if (!new_ids_.empty()) {
    // The event times in the log are its ids' oldest and newest: enough for the epochs they
    // become at recovery.
    wb.put(log_key(checkpoint), {std::string_view(reinterpret_cast<const char*>(&new_oldest_), 4),
                                 std::string_view(reinterpret_cast<const char*>(&new_newest_), 4),
                                 std::string_view(reinterpret_cast<const char*>(new_ids_.data()),
                                                  new_ids_.size() * sizeof(std::uint64_t))});
    logs_.push_back({checkpoint, new_newest_, current_epoch()});
    new_ids_.clear();
    new_oldest_ = 0xffffffffu;
    new_newest_ = 0;
  }
  for (auto l = logs_.rbegin(); l != logs_.rend(); ++l) {
    if (l->checkpoint > durable) continue;
    // Its ids of epochs before the one current when it was cut are all in it or before it.
    logged_epoch_ = std::max(logged_epoch_, l->last_epoch);
    break;
  }
  // Epochs before this one moved out of the table and are written in full (this cut included).
  std::uint32_t moved_written = first_epoch_;
  for (group& g : groups_) {
    for (part& p : g.parts) {
      if (p.checkpoint != 0 || p.filling) continue;
      if (p.as_file) {
        if (p.added.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
          const std::string why = p.added.get();
          if (why.empty()) {
            ++files_added_;
            p.filed = true;  // durable already: read from the store from now on
            g.written = true;
            changed_ = true;
            continue;
          }
          if (file_errors_++ == 0)
            spdlog::warn(
                "record ids: moved ids could not be added to the store as a file ({}): "
                "they are written with the checkpoints",
                why);
          p.as_file = false;
        }
        if (p.as_file) {
          moved_written = std::min(moved_written, p.first_epoch);
          continue;
        }
      }
      for (; p.next_chunk < p.chunks->size() && budget > 0; ++p.next_chunk) {
        const std::vector<std::uint64_t>& chunk = (*p.chunks)[p.next_chunk];
        if (chunk.empty()) continue;
        wb.put_id(*st_,
                  shard_key(key_kind::id_group, shard_)
                      .be(g.no)
                      .be(static_cast<std::uint32_t>(p.next_chunk))
                      .be(p.no)
                      .str(),
                  std::string_view(reinterpret_cast<const char*>(chunk.data()),
                                   chunk.size() * sizeof(std::uint64_t)));
        budget -= std::min(budget, chunk.size() * sizeof(std::uint64_t));
        g.written = true;
        changed_ = true;
      }
      if (p.next_chunk == p.chunks->size()) {
        p.checkpoint = checkpoint;
      } else {
        moved_written = std::min(moved_written, p.first_epoch);
      }
    }
    // Parts of checkpoints written are read from the store from now on (until then, and while
    // partly written, from here).
    std::erase_if(g.parts, [&](part& p) {
      if (!p.filed && (p.checkpoint == 0 || p.checkpoint > durable)) return false;
      keep_spare(p);
      return true;
    });
  }
  // Log values whose ids have all left the table: moved (their epochs are before any move not
  // written in full by this cut, its file not yet added included) or expired.
  while (!logs_.empty() &&
         (logs_.front().last_epoch < moved_written || logs_.front().newest_t < purged_t_)) {
    wb.del(log_key(logs_.front().checkpoint));
    logs_.pop_front();
  }
  for (std::uint64_t no : dropped_) wb.del_range_id(*st_, group_key(no), group_key(no + 1));
  dropped_.clear();
  if (!changed_) return;
  writer w;
  w.put(next_group_).put(static_cast<std::uint32_t>(groups_.size()));
  for (const group& g : groups_)
    w.put(g.no)
        .put(g.min_t)
        .put(g.max_t)
        .put(g.entry_bytes == 8 ? g.bits | kFingerprintsOnly : g.bits)
        .put(g.count)
        .put(g.capacity)
        .put(g.parts_made);
  wb.put(shard_key(key_kind::id_tier, shard_).str(), w.str());
  changed_ = false;
}

void id_window::read_group(const group& g,
                           const std::function<void(std::uint64_t, std::uint32_t)>& f) const {
  st_->scan_ids(group_key(g.no), [&](std::string_view, std::string_view v) {
    for (std::size_t at = 0; at + g.entry_bytes <= v.size(); at += g.entry_bytes) {
      id_table::slot e{0, g.max_t};  // an entry's event time: its own, or its group's newest
      std::memcpy(&e, v.data() + at, g.entry_bytes);
      f(e.fp, e.t);
    }
    return true;
  });
}

void id_window::recover(const store& st, unix_seconds horizon) {
  st_ = &st;
  std::string v;
  if (st.get(shard_key(key_kind::id_tier, shard_).str(), v)) {
    auto key = decode_key(v);
    if (!key) {
      throw std::runtime_error("store: shard " + std::to_string(shard_) +
                               ": the record-id window's key is damaged");
    }
    next_group_ = key->next_group;
    for (const group_meta& m : key->groups) {
      group g;
      g.no = m.no;
      g.min_t = m.min_t;
      g.max_t = m.max_t;
      g.bits = m.bits;
      g.entry_bytes = m.entry_bytes;
      g.count = m.count;
      g.capacity = m.capacity;
      g.parts_made = m.parts;
      g.written = true;
      g.filter = id_filter(g.capacity);
      read_group(g, [&](std::uint64_t fp, std::uint32_t) { g.filter.add(fp); });
      grouped_max_t_ = std::max(grouped_max_t_, g.max_t);
      groups_.push_back(std::move(g));
    }
    // A group is not added to after a restart: the next move opens a new one.
    if (!groups_.empty()) groups_.back().capacity = groups_.back().count;
  }
  // The log, oldest first: into the table (what moved meanwhile is in a group too: no harm).
  // Every id it holds is durable: a move of them may go as a file.
  logged_epoch_ = 0xffffffffu;
  const std::uint32_t h = stored_time(horizon);
  const std::string prefix = shard_key(key_kind::id_log, shard_).str();
  st.scan(prefix, [&](std::string_view k, std::string_view value) {
    reader r(value);
    const auto oldest = r.get<std::uint32_t>();
    const auto newest = r.get<std::uint32_t>();
    if (newest >= h) {
      // Each id is dated its value's newest, and its epoch reaches back to the oldest (an epoch
      // may begin within a value): a group it moves to covers the id's own time.
      while (r.left() >= 8) {
        current().min_t = std::min(current().min_t, oldest);
        insert_table(r.get<std::uint64_t>(), newest);
      }
    }
    logs_.push_back({read_be<std::uint64_t>(k, prefix.size()), newest, current_epoch()});
    return true;
  });
  logged_epoch_ = current_epoch();  // what was loaded is durable (new ids join this epoch)
  changed_ = true;
}

void id_window::for_each_all(const std::function<void(std::uint64_t, unix_seconds)>& f) const {
  table_.for_each([&](std::uint64_t fp, std::uint32_t e) {
    f(fp, static_cast<unix_seconds>(epochs_[e - first_epoch_].max_t));
  });
  for (const group& g : groups_) {
    for (const part& p : g.parts) {
      if (p.checkpoint != 0 && g.written) continue;  // cut: the store has it (read below)
      for (const auto& chunk : *p.chunks) {
        for (std::uint64_t fp : chunk) f(fp, g.max_t);
      }
    }
    if (g.written && st_ != nullptr)
      read_group(g, [&](std::uint64_t fp, std::uint32_t t) { f(fp, t); });
  }
}

std::optional<id_window::stored_key> id_window::decode_key(std::string_view v) {
  constexpr std::uint64_t kMaxGroupIds = std::uint64_t{1} << 36;  // no table is that big
  reader r(v);
  stored_key k;
  k.next_group = r.get<std::uint64_t>();
  const auto n = r.get<std::uint32_t>();
  if (!r.ok || n > r.left() / 44) return std::nullopt;  // 44 bytes a group
  for (std::uint32_t i = 0; i < n; ++i) {
    group_meta g;
    g.no = r.get<std::uint64_t>();
    g.min_t = r.get<std::uint32_t>();
    g.max_t = r.get<std::uint32_t>();
    g.bits = r.get<std::uint32_t>();
    if (g.bits & kFingerprintsOnly) {
      g.bits &= ~kFingerprintsOnly;
    } else {
      g.entry_bytes = sizeof(id_table::slot);
    }
    g.count = r.get<std::uint64_t>();
    g.capacity = r.get<std::uint64_t>();
    g.parts = r.get<std::uint64_t>();
    if (!r.ok || g.bits > kMaxBits || g.count > g.capacity || g.capacity > kMaxGroupIds ||
        g.no >= k.next_group || (g.count > 0 && g.min_t > g.max_t))
      return std::nullopt;
    k.groups.push_back(g);
  }
  if (r.left() != 0) return std::nullopt;
  return k;
}

id_window_stats id_window::stats() const {
  id_window_stats s;
  s.in_memory = table_.size();
  s.memory_bytes = table_.memory_bytes() + spare_bytes_;
  for (const group& g : groups_) {
    s.in_store += g.count;
    s.memory_bytes += g.filter.memory_bytes();
    for (const part& p : g.parts) {
      if (p.filling) s.in_store += p.count;  // out of the table already
      s.memory_bytes += p.memory_bytes;
    }
  }
  s.store_lookups = store_lookups_;
  s.moves = moves_;
  s.lookup_errors = lookup_errors_;
  s.files = files_added_;
  s.file_errors = file_errors_;
  return s;
}

}  // namespace simcap::detail
