#pragma once
// The engine's shards and the four ways to give them work. Each verb's contract:
//
//   post(s, f)      f(shard&) runs on shard s's thread, between record batches and ahead of the
//                   batches still queued. Returns at once. For changes (control) and due work.
//   read(s, r, t)   a query: r(shard&) only reads. It runs at once in the calling thread when the
//                   shard is idle (borrowed under its busy lock), else on the shard thread between
//                   batches or between slices of a checkpoint's cut. t(result) runs right after
//                   r, outside the shard, in the same thread: the caller's or the shard's (keep it
//                   short, and never wait there for another shard).
//   call(s, f)      post, then wait for f's result. Not from a shard thread.
//   call_all(f)     f on every shard, in parallel, and wait; results by shard. While the shards
//                   are not running (before start, after stop, recovery) f runs here, shard by
//                   shard.
#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "shard/shard.hpp"

namespace simcap::detail {

class shard_set {
 public:
  template <class Make>
  shard_set(unsigned n, Make&& make) {
    for (unsigned i = 0; i < n; ++i) shards_.push_back(make(i));
  }
  unsigned size() const noexcept { return static_cast<unsigned>(shards_.size()); }
  shard& operator[](unsigned s) noexcept { return *shards_[s]; }
  const shard& operator[](unsigned s) const noexcept { return *shards_[s]; }
  auto begin() const noexcept { return shards_.begin(); }
  auto end() const noexcept { return shards_.end(); }

  void start() {
    for (auto& s : shards_) s->start();
    running_ = true;
  }
  void stop() {
    for (auto& s : shards_) s->stop();
    running_ = false;
  }
  bool running() const noexcept { return running_; }

  template <class F>
  void post(unsigned s, F&& f) const {
    shards_[s]->post_task(new fn_task<std::decay_t<F>>(std::forward<F>(f)));
  }

  template <class Read, class Then>
  void read(unsigned s, Read&& r, Then&& then) const {
    using T = std::invoke_result_t<Read&, shard&>;
    std::optional<T> v;
    if (shards_[s]->try_read_here([&](shard& sh) { v.emplace(r(sh)); })) {
      then(std::move(*v));
      return;
    }
    shards_[s]->post_read(new fn_task([r = std::forward<Read>(r), then = std::forward<Then>(then)](
                                          shard& sh) mutable { then(r(sh)); }));
  }

  template <class F>
  auto call(unsigned s, F&& f) const -> std::invoke_result_t<F&, shard&> {
    using R = std::invoke_result_t<F&, shard&>;
    if (!running_) return f(*shards_[s]);
    std::promise<R> done;
    auto fut = done.get_future();
    post(s, [&f, &done](shard& sh) {
      if constexpr (std::is_void_v<R>) {
        f(sh);
        done.set_value();
      } else {
        done.set_value(f(sh));
      }
    });
    return fut.get();
  }

  template <class F>
  auto call_all(F f) const {
    using R = std::invoke_result_t<F&, shard&>;
    using V = std::conditional_t<std::is_void_v<R>, int, R>;
    auto run = [&f](shard& sh) -> V {
      if constexpr (std::is_void_v<R>) {
        f(sh);
        return 0;
      } else {
        return f(sh);
      }
    };
    std::vector<V> out;
    out.reserve(shards_.size());
    if (!running_) {
      for (auto& sh : shards_) out.push_back(run(*sh));
      return out;
    }
    std::vector<std::promise<V>> done(shards_.size());
    for (unsigned s = 0; s < shards_.size(); ++s) {
      post(s, [&run, p = &done[s]](shard& sh) { p->set_value(run(sh)); });
    }
    for (auto& p : done) out.push_back(p.get_future().get());
    return out;
  }

 private:
  std::vector<std::unique_ptr<shard>> shards_;
  std::atomic<bool> running_{false};
};

}  // namespace simcap::detail
