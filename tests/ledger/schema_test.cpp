// Schema migrations at open: an empty file is migrated to the current version, each step in a
// transaction; a newer schema or another application's database is refused untouched.
#include <gtest/gtest.h>

#include <thread>

#include "fixtures.hpp"
#include "migrations.hpp"

using namespace skillcard::ledger;
using namespace skillcard::ledger::test;

TEST(Schema, MigratesAnEmptyFileToTheCurrentVersion) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  {
    auto ledger = SqliteLedger::open(file);
    EXPECT_EQ(ledger->schema_version(), kSqliteSchemaVersion);
  }
  RawDb raw(file);
  EXPECT_EQ(raw.number("SELECT count(*) FROM schema_version"), kSqliteSchemaVersion);
  EXPECT_EQ(raw.number("PRAGMA application_id"), 0x534B4C47);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  for (const char* table :
       {"cards", "vouchers", "redemptions", "nonces", "budgets", "holders", "certificates", "audit_log", "meta"}) {
    EXPECT_EQ(
        raw.number(std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '") + table + "'"),
        1)
        << table;
  }
}

TEST(Schema, ReopenKeepsTheLedgerIdAndDoesNotMigrateAgain) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  LedgerId first{};
  {
    auto ledger = SqliteLedger::open(file);
    first = ledger->ledger_id();
  }
  auto ledger = SqliteLedger::open(file);
  EXPECT_EQ(ledger->ledger_id(), first);
  EXPECT_NE(first, LedgerId{});
  RawDb raw(file);
  EXPECT_EQ(raw.number("SELECT count(*) FROM schema_version"), kSqliteSchemaVersion);
}

TEST(Schema, RefusesANewerSchemaVersion) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  SqliteLedger::open(file).reset();
  {
    RawDb raw(file);
    raw.exec("INSERT INTO schema_version VALUES (" + std::to_string(kSqliteSchemaVersion + 1) +
             ", 0, 'from the future')");
  }
  try {
    SqliteLedger::open(file);
    FAIL() << "a newer schema was opened";
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.reason(), SchemaError::Reason::NewerVersion);
    EXPECT_EQ(e.found_version(), kSqliteSchemaVersion + 1);
    EXPECT_EQ(e.supported_version(), kSqliteSchemaVersion);
    EXPECT_NE(std::string(e.what()).find("newer than this software supports"), std::string::npos) << e.what();
  }
  RawDb raw(file);
  EXPECT_EQ(raw.number("SELECT max(version) FROM schema_version"), kSqliteSchemaVersion + 1);
}

TEST(Schema, RefusesAnotherApplicationsDatabaseWithoutTouchingIt) {
  TempDir dir;
  const auto file = dir / "other.db";
  {
    RawDb raw(file);
    raw.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
  }
  try {
    SqliteLedger::open(file);
    FAIL() << "another application's database was opened";
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.reason(), SchemaError::Reason::NotALedger);
  }
  RawDb raw(file);
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "delete");  // not even switched to WAL
  EXPECT_EQ(raw.number("SELECT count(*) FROM sqlite_schema"), 1);
}

TEST(Schema, OpenWithoutCreateRefusesAMissingFile) {
  TempDir dir;
  SqliteOptions options;
  options.create = false;
  try {
    SqliteLedger::open(dir / "missing.db", options);
    FAIL();
  } catch (const StorageError& e) {
    EXPECT_EQ(e.kind(), StorageErrorKind::CantOpen);
    EXPECT_NE(std::string(e.what()).find("sqlite_ledger.cpp"), std::string::npos) << "names the call site";
  }
}

TEST(Schema, MigrationsApplyInOrderFromTheVersionFound) {
  TempDir dir;
  auto db = sqlite::Db::open((dir / "m.db").string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  const sqlite::Migration one[] = {{1, "one", "CREATE TABLE a (x INTEGER)"}};
  const sqlite::Migration two[] = {{1, "one", "CREATE TABLE a (x INTEGER)"}, {2, "two", "CREATE TABLE b (y INTEGER)"}};
  sqlite::migrate(db, one, kNow);
  EXPECT_EQ(sqlite::schema_version_of(db), 1);
  sqlite::migrate(db, two, kNow + 1);  // only step 2 runs (step 1 would fail: table a exists)
  EXPECT_EQ(sqlite::schema_version_of(db), 2);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM schema_version"), 2);
  EXPECT_EQ(db.scalar("SELECT applied_at FROM schema_version WHERE version = 2"), static_cast<std::int64_t>(kNow + 1));
}

TEST(Schema, FailedMigrationIsRolledBackEntirely) {
  TempDir dir;
  auto db = sqlite::Db::open((dir / "m.db").string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  const sqlite::Migration ok[] = {{1, "one", "CREATE TABLE a (x INTEGER)"}};
  const sqlite::Migration bad[] = {{1, "one", "CREATE TABLE a (x INTEGER)"},
                                   {2, "half", "CREATE TABLE b (y INTEGER); INSERT INTO nowhere VALUES (1)"}};
  sqlite::migrate(db, ok, kNow);
  try {
    sqlite::migrate(db, bad, kNow);
    FAIL();
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.reason(), SchemaError::Reason::MigrationFailed);
    EXPECT_NE(std::string(e.what()).find("migration 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(sqlite::schema_version_of(db), 1);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'b'"), 0) << "table of the failed step remains";
}

TEST(Schema, ConcurrentOpensOfANewFileMigrateOnce) {
  TempDir dir;
  const auto file = dir / "ledger.db";
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      try {
        auto l = SqliteLedger::open(file);
        if (l->schema_version() == kSqliteSchemaVersion) ++opened;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  RawDb raw(file);
  EXPECT_EQ(raw.number("SELECT count(*) FROM schema_version"), kSqliteSchemaVersion);
}
