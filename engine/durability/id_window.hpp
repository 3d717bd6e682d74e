#pragma once
// The record-id window of a shard, exact over max(dedup_window, late_grace) in bounded memory.
//
// Every remembered id is a 64-bit fingerprint (of the SIM and the id's hash). The most recently
// seen ids live in an id_table in RAM (12 bytes a slot: the fingerprint and the epoch it was
// inserted in; an epoch is a sixteenth of the table's capacity of inserts and keeps the range
// of event times of its ids). The table grows by four up to its share of [limits] dedup_memory,
// each larger table made ready (its memory faulted in) on another thread meanwhile. At its
// share, the oldest epochs (about a third of the entries) move to the store part: the move
// takes a few slots of the table with each insert that follows, so no insert waits for a pass
// over the whole table; until it ends, the entries taken out are looked up where they wait.
//
// The store part is a list of groups, each up to a table's worth of moved entries with the range
// of their event times and a Bloom filter in RAM (12 bits an entry). A record is looked up in a
// group only when its event time is within the group's range (the live stream's records are
// newer than every group), and the filter answers most of those: only a repeat, or a false
// positive (under 1 %), reads the store. In the store a group is split by the fingerprint's
// top bits into chunks of about 256 entries, each move writing its part of each chunk as one
// key in the record-id column family (one prefix read finds them all). An entry there is its
// fingerprint (8 bytes; groups written before also kept an event time: 12), and an entry's event
// time, where one is needed (re-sharding), is its group's newest. A move whose entries are all
// logged in checkpoints known written goes to the store as a table file, made on a thread of
// its own and added outside any checkpoint; any other (or one whose file is refused) is
// written with the checkpoints that follow, chunk by chunk, each cut writing up to twice the
// bytes it logs (at least 1 MiB). Moved entries stay readable here until they are in the store.
// A group is deleted when its newest event time has left the window.
//
// The table itself is made durable by a log: each checkpoint writes the ids inserted since the
// last one as one value; a log value whose ids have all moved (and are in the store in full) or
// expired is deleted. Recovery reads the groups' filters back and loads the logged ids into the
// table.
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "durability/store.hpp"
#include "simcap/time.hpp"
#include "state/id_filter.hpp"
#include "state/id_table.hpp"

namespace simcap::detail {

struct id_window_stats {
  std::uint64_t in_memory = 0;      // entries in the table
  std::uint64_t in_store = 0;       // entries in the store part (filters in RAM)
  std::uint64_t memory_bytes = 0;   // RAM they take
  std::uint64_t store_lookups = 0;  // store reads (a late record the filter did not rule out)
  std::uint64_t moves = 0;          // times entries moved to the store
  std::uint64_t lookup_errors = 0;  // reads the store failed (the record counted as new)
  std::uint64_t files = 0;          // moves added to the store as table files
  std::uint64_t file_errors = 0;    // moves whose file was not added (written with checkpoints)
};

class id_window {
 public:
  // budget: bytes of RAM for the shard's part of dedup_memory.
  explicit id_window(std::size_t budget = std::size_t{256} << 20);
  ~id_window();
  id_window(const id_window&) = delete;
  id_window& operator=(const id_window&) = delete;

  // With a store, the window logs its ids and moves old entries there; without one it all
  // stays in RAM (the budget is then not kept).
  void attach(const store* st, unsigned shard) noexcept;
  // Remembers the id; false when it was seen before (a repeat).
  bool insert(std::uint64_t fp, unix_seconds t);
  // Fetches ahead what insert(fp, t) will read: the table's slot and the filters of the groups
  // whose event times t is within.
  void prefetch(std::uint64_t fp, unix_seconds when) const noexcept {
    table_.prefetch(fp);
    const std::uint32_t t = stored_time(when);
    if (t > grouped_max_t_) return;
    for (const group& g : groups_) {
      if (t >= g.min_t && t <= g.max_t) g.filter.prefetch(fp);
    }
  }
  // Forgets the entries dated before horizon (whole epochs and groups: an entry may be kept a
  // little longer than it must, never shorter).
  void purge(unix_seconds horizon);
  // Adds to wb the ids logged since the last cut, the entries moved, what was purged and the
  // window's key. durable: the newest checkpoint known written (moved entries of it and
  // before are read from the store from now on).
  void cut(write_batch& wb, std::uint64_t checkpoint, std::uint64_t durable);
  // Reads the groups (attach first) and loads the logged ids dated at or after horizon.
  void recover(const store& st, unix_seconds horizon);
  // Whether a finished move is added to the store as a table file, on a thread of its own,
  // rather than written with the checkpoints that follow (on by default; a move whose file
  // cannot be added is written with them).
  void add_moves_as_files(bool on) noexcept { files_ = on; }
  // Waits until no move is being added to the store as a file (before the store closes).
  void settle();
  // Calls f(fp, t) for every entry, in RAM and in the store (re-sharding; t is the newest event
  // time of the entry's epoch).
  void for_each_all(const std::function<void(std::uint64_t, unix_seconds)>& f) const;
  id_window_stats stats() const;

  // The window's key as stored: its groups (what recovery reads before their filters).
  struct group_meta {
    std::uint64_t no = 0;
    std::uint32_t min_t = 0, max_t = 0, bits = 0, entry_bytes = 8;
    std::uint64_t count = 0, capacity = 0, parts = 0;
  };
  struct stored_key {
    std::uint64_t next_group = 1;
    std::vector<group_meta> groups;
  };
  // nullopt for a value that is not one (truncated, or numbers no window writes).
  static std::optional<stored_key> decode_key(std::string_view v);

  // The time an entry keeps: event times before 1970 or after 2106 are clamped (no record so
  // dated is accepted: they are outside any period).
  static std::uint32_t stored_time(unix_seconds t) noexcept {
    return t <= 0 ? 0u : t >= 0xffffffffLL ? 0xffffffffu : static_cast<std::uint32_t>(t);
  }

 private:
  // The entries a move added to a group (fingerprints), by chunk, until known durable.
  // checkpoint: the cut that wrote its last chunk, or that found its file added.
  using chunk_list = std::vector<std::vector<std::uint64_t>>;
  struct part {
    std::uint64_t checkpoint = 0;  // 0: not cut yet
    std::uint64_t no = 0;          // in its group (several moves may go into one checkpoint)
    bool filling = false;          // its move goes on: not cut yet
    std::uint64_t count = 0;
    std::uint32_t first_epoch = 0;   // the oldest epoch its move took
    std::size_t next_chunk = 0;      // the chunks before it are cut (a part may take several cuts)
    std::uint64_t memory_bytes = 0;  // what it takes (counted when its move starts and ends)
    std::shared_ptr<chunk_list> chunks;  // shared with the thread that writes its file
    // Goes to the store as a table file (else, or once its file is refused, with the cuts):
    // made as its move ends, when every id in it is logged in a checkpoint known written.
    bool as_file = false;
    bool filed = false;              // its file is in the store
    std::future<std::string> added;  // being added ("" once it was)
  };
  struct group {
    std::uint64_t no = 0;
    std::uint32_t min_t = 0xffffffffu, max_t = 0;
    std::uint32_t bits = 0;  // chunk = fp >> (64 - bits)
    // Bytes an entry takes in the store: 8 (the fingerprint), or 12 (and an event time) in
    // groups written before.
    std::uint32_t entry_bytes = 8;
    std::uint64_t count = 0, capacity = 0;
    std::uint64_t parts_made = 0;
    bool written = false;  // some part was cut (the store may hold entries)
    id_filter filter;
    std::vector<part> parts;
  };
  struct epoch {
    std::uint32_t min_t = 0xffffffffu, max_t = 0;
    std::uint64_t count = 0;
  };
  struct log_value {
    std::uint64_t checkpoint;
    std::uint32_t newest_t;
    std::uint32_t last_epoch;  // the epoch current when it was cut
  };
  static std::size_t chunk_of(std::uint64_t fp, std::uint32_t bits) noexcept {
    return bits == 0 ? 0 : static_cast<std::size_t>(fp >> (64 - bits));
  }
  std::string group_key(std::uint64_t group) const;
  std::string chunk_prefix(std::uint64_t group, std::size_t chunk) const;
  std::string log_key(std::uint64_t checkpoint) const;
  bool in_groups(std::uint64_t fp, std::uint32_t t);
  bool in_group(group& g, std::uint64_t fp);
  // Into the table (the caller checked the groups); false for a repeat.
  bool insert_table(std::uint64_t fp, std::uint32_t t);
  epoch& current() noexcept { return epochs_.back(); }
  std::uint32_t current_epoch() const noexcept {
    return first_epoch_ + static_cast<std::uint32_t>(epochs_.size()) - 1;
  }
  void next_epoch() { epochs_.emplace_back(); }
  group& open_group(std::uint64_t expected);
  // Makes room: grows the table, or starts moving the oldest epochs, about a third of the table,
  // to the store part.
  void make_room();
  void grow();
  // Starts making the next larger table ready on another thread.
  void prepare_next();
  void start_move();
  // Goes on with the move in progress for about `slots` slots of the table; ends it when done.
  void step_move(std::size_t slots);
  void finish_move() {
    if (move_) step_move(SIZE_MAX);
  }
  // Keeps the chunks of a part leaving RAM for the next move.
  void keep_spare(part& p);
  // Starts adding the part (of group g, its move ended) to the store as a table file; false when
  // no thread could be had.
  bool add_as_file(const group& g, part& p);
  // Whether a part's file is being made (one at a time).
  bool filing() const;
  // The table's size at which make_room() is called next.
  void set_limit() noexcept;
  // Calls f(fp, t) for each entry of the group that the store holds.
  void read_group(const group& g, const std::function<void(std::uint64_t, std::uint32_t)>& f) const;

  struct move_state {
    id_table::extraction x;
    std::size_t epochs = 0;  // the oldest epochs are moving (into the last part of the last group)
  };
  id_table table_;
  std::size_t limit_ = 0;                               // see set_limit()
  std::optional<move_state> move_;                      // in progress
  std::future<huge_array<id_table::slot>> next_table_;  // being made ready
  std::size_t budget_;
  std::size_t max_slots_;        // the table's capacity at the budget
  std::uint64_t epoch_inserts_;  // inserts an epoch takes
  std::deque<epoch> epochs_;     // of the entries in the table, oldest first
  std::uint32_t first_epoch_ = 0;
  const store* st_ = nullptr;
  unsigned shard_ = 0;
  std::uint64_t next_group_ = 1;
  std::vector<group> groups_;           // oldest first; the last takes moved entries
  std::uint32_t grouped_max_t_ = 0;     // the newest event time of any group's entries
  std::vector<std::uint64_t> dropped_;  // written groups to delete at the next cut
  std::vector<std::uint64_t> new_ids_;  // to log at the next cut, with their event times' range
  std::uint32_t new_oldest_ = 0xffffffffu, new_newest_ = 0;
  std::deque<log_value> logs_;         // written, oldest first
  std::uint32_t purged_t_ = 0;         // log values whose ids are all older than this can go
  bool changed_ = false;               // the window's key needs writing
  bool files_ = true;                  // see add_moves_as_files
  std::uint32_t logged_epoch_ = 0;     // the ids of older epochs are in checkpoints known written
  std::shared_ptr<chunk_list> spare_;  // a part's chunks, emptied, for the next move
  std::uint64_t spare_bytes_ = 0;
  std::uint64_t files_added_ = 0, file_errors_ = 0;
  std::uint64_t store_lookups_ = 0, moves_ = 0, lookup_errors_ = 0;
};

}  // namespace simcap::detail
