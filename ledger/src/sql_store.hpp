// Private to the ledger: what the SQLite and the PostgreSQL Store (ledger_engine.hpp) share — a
// writer connection driven by the group committer, a reader connection behind a mutex, and the
// write / read / read_snapshot verbs the engine calls. The backend adds its transaction verbs
// (TransactionControl), reader_ready() (reconnect if needed) and kSnapshotBegin.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "group_commit.hpp"
#include "skillcard/ledger/types.hpp"

namespace skillcard::ledger {

template <class Derived, class DbT>
struct SqlStore : TransactionControl {
  using Db = DbT;
  Db writer;  // the committer thread's (and open()'s, before the committer starts)
  std::mutex reader_mutex;
  Db reader;
  LedgerId id{};
  // The backend's destructor resets it first: queued writes finish while its verbs still exist.
  std::unique_ptr<GroupCommitter> committer;

  ~SqlStore() override {
    reader.close();
    writer.close();
  }

  LedgerId ledger_id() const { return id; }

  // Runs `f(writer)` in the next batch; returns when that batch is durable.
  template <class F>
  void write(F&& f) {
    const std::function<void()> op = [&] { f(writer); };
    committer->run(op);
  }
  // Runs `f(reader)` under the reader lock.
  template <class F>
  auto read(F&& f) {
    std::lock_guard lock(reader_mutex);
    static_cast<Derived&>(*this).reader_ready();
    return f(reader);
  }
  // Runs `f(reader)` inside one read transaction (a consistent snapshot).
  template <class F>
  auto read_snapshot(F&& f) {
    std::lock_guard lock(reader_mutex);
    static_cast<Derived&>(*this).reader_ready();
    reader.exec(Derived::kSnapshotBegin);
    try {
      auto result = f(reader);
      reader.exec("COMMIT");
      return result;
    } catch (...) {
      try {
        reader.exec("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
  }
};

}  // namespace skillcard::ledger
