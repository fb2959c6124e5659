// PostgreSQL-only ledger tests (the shared behavioural suite, races and audit tampering included,
// runs on PgLedger too): migrations at open, typed errors from SQLSTATEs, a connection that the
// server dropped, and backup / restore with pg_dump and pg_restore.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <latch>
#include <set>
#include <thread>

#include "fixtures.hpp"
#include "pg_backend.hpp"
#include "pg_db.hpp"
#include "pg_migrations.hpp"
#include "skillcard/crypto/key_files.hpp"
#include "skillcard/ledger/audit.hpp"
#include "skillcard/ledger/pg_ledger.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;
using schemas::NonceKind;

namespace {

constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

// Runs a shell command; its exit status.
int shell(const std::string& command) { return std::system(command.c_str()); }

std::string shell_quoted(const std::string& s) { return "'" + s + "'"; }  // our strings hold no quote

}  // namespace

TEST(PgLedger, MigratesAnEmptySchemaToTheCurrentVersion) {
  TempDir dir;
  const auto where = dir / "ledger";
  {
    auto ledger = PgLedger::open(pg_conninfo_for(where));
    EXPECT_EQ(ledger->schema_version(), kPgSchemaVersion);
  }
  Raw raw(where);
  EXPECT_EQ(raw.number("SELECT count(*) FROM schema_version"), kPgSchemaVersion);
  EXPECT_EQ(raw.number("SELECT count(*) FROM writer_lock"), 1) << "the row every writer locks";
  for (const char* table : {"cards", "vouchers", "redemptions", "nonces", "budgets", "holders", "certificates",
                            "audit_log", "meta", "writer_lock"}) {
    EXPECT_EQ(raw.number(std::string("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND "
                                     "tablename = '") +
                         table + "'"),
              1)
        << table;
  }
}

// Schema version 3: the column checks of the tables every redemption, issue and nonce writes are
// domains (checked per assigned column, not rebuilt from text per statement); only the key and
// row rules stay table CHECKs, and every value refused before is refused still.
TEST(PgLedger, ColumnChecksOfTheWrittenTablesAreDomainsThatRefuseWhatTheChecksRefused) {
  TempDir dir;
  const auto where = dir / "ledger";
  std::string card;
  std::uint64_t serial = 0;
  {
    auto s = seeded_ledger(where, 1);
    card = s.cards[0].number;
    const auto v = issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000001), card);
    serial = serial_of(v.id());
  }
  Raw raw(where);
  const auto table_checks = [&](const char* table) {
    return raw.number(std::string("SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND conrelid = '") + table +
                      "'::regclass");
  };
  EXPECT_EQ(table_checks("vouchers"), 1) << "serial > 0";
  EXPECT_EQ(table_checks("redemptions"), 1) << "seq > 0";
  EXPECT_EQ(table_checks("budgets"), 1) << "committed + spent <= allocated";
  EXPECT_EQ(table_checks("audit_log"), 0);
  EXPECT_EQ(table_checks("nonces"), 0);
  const std::string v = std::to_string(serial);
  const std::string nonce17 = "x'" + std::string(34, '7') + "'";
  const std::string redemption =
      "INSERT INTO redemptions (seq, voucher, card, counter, receipt, site, nonce, "
      "terminal_time, server_time, classroom_hours, online_hours, terminal, clerk) VALUES "
      "(1, " +
      v + ", '" + card + "', ";
  for (const std::string& sql : std::vector<std::string>{
           "UPDATE vouchers SET state = 7 WHERE serial = " + v,
           "UPDATE vouchers SET state = 0 WHERE serial = " + v,
           "UPDATE vouchers SET level = 6 WHERE serial = " + v,
           "UPDATE vouchers SET fund = 5 WHERE serial = " + v,
           "UPDATE vouchers SET face_value_fen = -1 WHERE serial = " + v,
           "UPDATE vouchers SET holder = x'00' WHERE serial = " + v,
           "UPDATE vouchers SET signer_kid = x'0102' WHERE serial = " + v,
           "UPDATE budgets SET spent_fen = -1",
           "UPDATE budgets SET committed_fen = -1",
           "UPDATE budgets SET allocated_fen = 0 WHERE fund = 1",  // below what is committed: the row rule
           "UPDATE budgets SET fund = 9 WHERE fund = 4",
           "INSERT INTO audit_log (seq, at, terminal, clerk, action, subject, outcome, prev_hash, hash) VALUES "
           "(999, 1, 't', 'c', 'a', 's', 'o', x'00', x'00')",
           "INSERT INTO nonces (nonce, terminal, issued_at, expires_at) VALUES (x'01', 'K1', 1, 2)",
           redemption + "-1, x'00', 1, " + nonce17 + ", 0, 0, 0, 0, 't', 'c')",
           redemption + "1, x'00', 1, x'0102', 0, 0, 0, 0, 't', 'c')",
       }) {
    try {
      raw.exec(sql);
      ADD_FAILURE() << "accepted: " << sql;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("violates check constraint"), std::string::npos) << e.what();
    }
  }
  // What the rules allow still goes in.
  EXPECT_NO_THROW(raw.exec("UPDATE budgets SET allocated_fen = allocated_fen + 1 WHERE fund = 1"));
  EXPECT_NO_THROW(raw.exec(redemption + "0, x'00', 1, " + nonce17 + ", 0, 0, 0, 0, 't', 'c')"));
}

TEST(PgLedger, ReopenKeepsTheLedgerIdAndDoesNotMigrateAgain) {
  TempDir dir;
  const auto conninfo = pg_conninfo_for(dir / "ledger");
  LedgerId first{};
  {
    auto ledger = PgLedger::open(conninfo);
    first = ledger->ledger_id();
  }
  auto ledger = PgLedger::open(conninfo);
  EXPECT_EQ(ledger->ledger_id(), first);
  EXPECT_NE(first, LedgerId{});
  Raw raw(dir / "ledger");
  EXPECT_EQ(raw.number("SELECT count(*) FROM schema_version"), kPgSchemaVersion);
}

TEST(PgLedger, TwoSchemasAreTwoLedgers) {
  TempDir dir;
  auto a = PgLedger::open(pg_conninfo_for(dir / "a"));
  auto b = PgLedger::open(pg_conninfo_for(dir / "b"));
  EXPECT_NE(a->ledger_id(), b->ledger_id());
  a->set_budget(FundSource::SpecialAccount, 1000, clerk(), kNow);
  EXPECT_TRUE(a->budget(FundSource::SpecialAccount));
  EXPECT_FALSE(b->budget(FundSource::SpecialAccount));
}

TEST(PgLedger, RefusesANewerSchemaVersion) {
  TempDir dir;
  const auto where = dir / "ledger";
  PgLedger::open(pg_conninfo_for(where)).reset();
  Raw(where).exec("INSERT INTO schema_version VALUES (" + std::to_string(kPgSchemaVersion + 1) +
                  ", 0, 'from the future')");
  try {
    PgLedger::open(pg_conninfo_for(where));
    FAIL() << "a newer schema was opened";
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.reason(), SchemaError::Reason::NewerVersion);
    EXPECT_EQ(e.found_version(), kPgSchemaVersion + 1);
    EXPECT_EQ(e.supported_version(), kPgSchemaVersion);
    EXPECT_NE(std::string(e.what()).find("newer than this software supports"), std::string::npos) << e.what();
  }
  Raw raw(where);
  EXPECT_EQ(raw.number("SELECT max(version) FROM schema_version"), kPgSchemaVersion + 1);
}

TEST(PgLedger, RefusesAnotherApplicationsTablesWithoutTouchingThem) {
  TempDir dir;
  const auto where = dir / "other";
  Raw(where).exec("CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT)");
  try {
    PgLedger::open(pg_conninfo_for(where));
    FAIL() << "another application's schema was opened";
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.reason(), SchemaError::Reason::NotALedger);
  }
  EXPECT_EQ(Raw(where).number("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"), 1);
}

TEST(PgLedger, OpenWithoutCreateRefusesAnEmptySchema) {
  TempDir dir;
  PgOptions options;
  options.create = false;
  try {
    PgLedger::open(pg_conninfo_for(dir / "empty"), options);
    FAIL();
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.reason(), SchemaError::Reason::NotALedger);
  }
  EXPECT_EQ(Raw(dir / "empty").number("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"), 0);
}

TEST(PgLedger, UnreachableServerIsCantOpenNamingTheCallSite) {
  try {
    PgLedger::open("host=127.0.0.1 port=1 dbname=skillcard user=postgres connect_timeout=5");
    FAIL();
  } catch (const StorageError& e) {
    EXPECT_EQ(e.kind(), StorageErrorKind::CantOpen);
    EXPECT_EQ(e.backend_code(), pg::sqlstate_code("08001"));
    EXPECT_NE(std::string(e.what()).find("pg_ledger.cpp"), std::string::npos) << "names the call site";
    EXPECT_NE(std::string(e.what()).find("PQconnectdb"), std::string::npos) << "names the call";
  }
}

// A server that takes the connection and then never answers (a paused host, a half-open
// failover) is given up on after the connect timeout the ledger sets by default, instead of
// holding the service for good.
TEST(PgLedger, AServerThatNeverAnswersIsCantOpenNotAHang) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 4), 0);  // the kernel completes the handshake; nobody ever reads
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const auto port = std::to_string(ntohs(address.sin_port));
  try {
    PgLedger::open("host=127.0.0.1 port=" + port + " dbname=skillcard user=postgres connect_timeout=2");
    ADD_FAILURE() << "opened a ledger on a server that never answered";
  } catch (const StorageError& e) {
    EXPECT_EQ(e.kind(), StorageErrorKind::CantOpen) << e.what();
    EXPECT_NE(std::string(e.what()).find("timeout"), std::string::npos) << e.what();
  }
  ::close(listener);
}

// A COMMIT whose answer went with the connection: the ledger asks the server, over a new
// session, what became of the transaction — committed (the batch is acknowledged), aborted (it
// failed, nothing written) or, while the old session still runs it, not yet known.
TEST(PgLedger, ALostCommitAnswerIsFoundOutFromTheServer) {
  TempDir dir;
  const auto where = dir / "ledger";
  PgLedger::open(pg_conninfo_for(where)).reset();
  auto a = pg::Db::connect(pg_conninfo_for(where));
  auto b = pg::Db::connect(pg_conninfo_for(where));
  const auto txid_of_new_transaction = [&] {
    a.exec("BEGIN");
    return a.scalar("SELECT txid_current()");
  };
  const auto committed = txid_of_new_transaction();
  a.exec("COMMIT");
  EXPECT_EQ(pg::commit_outcome(b, committed), pg::CommitOutcome::Committed);
  const auto aborted = txid_of_new_transaction();
  a.exec("ROLLBACK");
  EXPECT_EQ(pg::commit_outcome(b, aborted), pg::CommitOutcome::Aborted);
  const auto open = txid_of_new_transaction();
  EXPECT_EQ(pg::commit_outcome(b, open), pg::CommitOutcome::Unknown);  // still in progress
  a.exec("COMMIT");
  EXPECT_EQ(pg::commit_outcome(b, open), pg::CommitOutcome::Committed);
  // The asking session itself was dropped (a server restart): it is re-established to ask.
  Raw(where).exec("SELECT pg_terminate_backend(" + std::to_string(b.scalar("SELECT pg_backend_pid()")) + ")");
  EXPECT_EQ(pg::commit_outcome(b, committed), pg::CommitOutcome::Committed);
}

TEST(PgLedger, SqlStatesMapToStorageErrorKinds) {
  EXPECT_EQ(pg::kind_of("40001"), StorageErrorKind::Busy);
  EXPECT_EQ(pg::kind_of("40P01"), StorageErrorKind::Busy);
  EXPECT_EQ(pg::kind_of("55P03"), StorageErrorKind::Busy);
  EXPECT_EQ(pg::kind_of("23505"), StorageErrorKind::Constraint);
  EXPECT_EQ(pg::kind_of("23514"), StorageErrorKind::Constraint);
  EXPECT_EQ(pg::kind_of("P0001"), StorageErrorKind::Constraint);
  EXPECT_EQ(pg::kind_of("XX001"), StorageErrorKind::Corrupt);
  EXPECT_EQ(pg::kind_of("08006"), StorageErrorKind::IoError);
  EXPECT_EQ(pg::kind_of("58030"), StorageErrorKind::IoError);
  EXPECT_EQ(pg::kind_of("57P01"), StorageErrorKind::IoError);
  EXPECT_EQ(pg::kind_of("53100"), StorageErrorKind::Full);
  EXPECT_EQ(pg::kind_of("25006"), StorageErrorKind::ReadOnly);
  EXPECT_EQ(pg::kind_of("28P01"), StorageErrorKind::CantOpen);
  EXPECT_EQ(pg::kind_of("3D000"), StorageErrorKind::CantOpen);
  EXPECT_EQ(pg::kind_of("42601"), StorageErrorKind::Misuse);
  EXPECT_EQ(pg::kind_of("99999"), StorageErrorKind::Other);
  EXPECT_NE(pg::sqlstate_code("40001"), pg::sqlstate_code("40P01"));
  EXPECT_NE(pg::sqlstate_code("23505"), pg::sqlstate_code("23514"));
}

TEST(PgLedger, FailedStatementIsATypedStorageErrorWithItsSqlState) {
  TempDir dir;
  auto db = pg::Db::connect(pg_conninfo_for(dir / "raw"));
  db.exec("CREATE TABLE t (k BIGINT PRIMARY KEY)");
  db.query("INSERT INTO t (k) VALUES (?1)").args(1).run();
  EXPECT_EQ(db.changes(), 1);
  try {
    db.query("INSERT INTO t (k) VALUES (?1)").args(1).run();
    FAIL();
  } catch (const StorageError& e) {
    EXPECT_EQ(e.kind(), StorageErrorKind::Constraint);
    EXPECT_EQ(e.backend_code(), pg::sqlstate_code("23505"));
    EXPECT_NE(std::string(e.what()).find("23505"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pg_ledger_test.cpp"), std::string::npos) << "names the call site";
  }
  auto q = db.query("SELECT k, ?1 IS NULL, ?2 FROM t");
  q.args(std::optional<std::uint32_t>{}, ByteView(Bytes{0x00, 0xFF, 0x10}));
  ASSERT_TRUE(q.step());
  EXPECT_EQ(q.u64(0), 1u);
  EXPECT_EQ(q.text(1), "t") << "a NULL parameter keeps its type";
  EXPECT_EQ(q.blob(2), (Bytes{0x00, 0xFF, 0x10})) << "bytea round trip";
  EXPECT_FALSE(q.step());
}

TEST(PgLedger, MigrationsApplyInOrderFromTheVersionFound) {
  TempDir dir;
  auto db = pg::Db::connect(pg_conninfo_for(dir / "m"));
  const pg::Migration one[] = {{1, "one", "CREATE TABLE meta (x BIGINT); CREATE TABLE a (x BIGINT)"}};
  const pg::Migration two[] = {{1, "one", "CREATE TABLE meta (x BIGINT); CREATE TABLE a (x BIGINT)"},
                               {2, "two", "CREATE TABLE b (y BIGINT)"}};
  pg::migrate(db, one, kNow);
  EXPECT_EQ(pg::schema_version_of(db), 1);
  pg::migrate(db, two, kNow + 1);  // only step 2 runs (step 1 would fail: table a exists)
  EXPECT_EQ(pg::schema_version_of(db), 2);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM schema_version"), 2);
  EXPECT_EQ(db.scalar("SELECT applied_at FROM schema_version WHERE version = 2"), static_cast<std::int64_t>(kNow + 1));
}

TEST(PgLedger, FailedMigrationIsRolledBackEntirely) {
  TempDir dir;
  auto db = pg::Db::connect(pg_conninfo_for(dir / "m"));
  const pg::Migration ok[] = {{1, "one", "CREATE TABLE meta (x BIGINT)"}};
  const pg::Migration bad[] = {{1, "one", "CREATE TABLE meta (x BIGINT)"},
                               {2, "half", "CREATE TABLE b (y BIGINT); INSERT INTO nowhere VALUES (1)"}};
  pg::migrate(db, ok, kNow);
  try {
    pg::migrate(db, bad, kNow);
    FAIL();
  } catch (const SchemaError& e) {
    EXPECT_EQ(e.reason(), SchemaError::Reason::MigrationFailed);
    EXPECT_NE(std::string(e.what()).find("migration 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pg::schema_version_of(db), 1);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'b'"), 0)
      << "table of the failed step remains";
}

TEST(PgLedger, ConcurrentOpensOfANewSchemaMigrateOnce) {
  TempDir dir;
  const auto conninfo = pg_conninfo_for(dir / "ledger");
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      try {
        auto l = PgLedger::open(conninfo);
        if (l->schema_version() == kPgSchemaVersion) ++opened;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  EXPECT_EQ(Raw(dir / "ledger").number("SELECT count(*) FROM schema_version"), kPgSchemaVersion);
}

TEST(PgLedger, WritesGoOnAfterTheServerDroppedTheConnections) {
  TempDir dir;
  const auto where = dir / "ledger";
  const std::string app = "drop" + std::to_string(::getpid());
  auto ledger = PgLedger::open(pg_conninfo_for(where) + " application_name=" + app);
  ledger->set_budget(FundSource::SpecialAccount, 1000, clerk(), kNow);
  Raw(where).exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '" + app + "'");
  // A write finds its dropped connection at BEGIN, before anything of it was sent: it begins once
  // more on a new connection, so no caller is failed for the server's restart.
  EXPECT_NO_THROW(ledger->set_budget(FundSource::SpecialAccount, 2000, clerk(), kNow));
  // The reader's first call on a dropped connection may fail (IoError: nothing written); the
  // connection is re-established for the next one.
  for (int attempt = 0;; ++attempt) {
    try {
      EXPECT_EQ(ledger->budget(FundSource::SpecialAccount)->allocated_fen, 2000);
      break;
    } catch (const StorageError& e) {
      EXPECT_EQ(e.kind(), StorageErrorKind::IoError) << e.what();
      ASSERT_LT(attempt, 1) << "the reader connection was not re-established";
    }
  }
  EXPECT_TRUE(
      verify_audit(*ledger, {}, crypto::OpenSsl::VerifyKey::parse(crypto::OpenSsl::PrivateKey::generate().public_key()))
          .ok());
}

// docs/ledger.md, "Backup and restore" (PostgreSQL): pg_dump of the ledger's schema in the custom
// format, pg_restore into an empty database; the restored ledger is the same ledger.
TEST(PgLedger, BackupWithPgDumpRestoresWithPgRestore) {
  TempDir dir;
  const auto where = dir / "ledger";
  const auto schema = pg_schema_for(where);
  crypto::KeyFileSigner signer{crypto::OpenSsl::PrivateKey::generate()};
  const auto key = crypto::OpenSsl::VerifyKey::parse(signer.public_key());
  Bytes checkpoint;
  LedgerId id{};
  std::vector<RedemptionExportRow> redemptions;
  Bytes first_receipt;
  std::string card;
  {
    auto s = seeded_ledger(where, 1);
    card = s.cards[0].number;
    for (unsigned v = 0; v < 5; ++v) {
      const auto voucher =
          issue_ok(*s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), card);
      const auto bytes = receipt(voucher.id(), v + 1, nonce(NonceKind::Terminal, v));
      if (v == 0) first_receipt = bytes;
      ASSERT_EQ(s.ledger->record_redemption(redeem_request(bytes, card)).status, RecordStatus::Recorded);
    }
    checkpoint = make_checkpoint(*s.ledger, signer, kNow + 5000);
    id = s.ledger->ledger_id();
    redemptions = s.ledger->list_redemptions({});
  }
  const auto dump = dir / "ledger.dump";
  ASSERT_EQ(shell(std::string(kPgBin) + "/pg_dump -d " + shell_quoted(pg_base_conninfo()) + " -n " + schema +
                  " -Fc -f " + dump.string()),
            0);
  const std::string restored_db = "restored_" + std::to_string(::getpid());
  Raw(dir / "admin").exec("DROP DATABASE IF EXISTS " + restored_db);
  Raw(dir / "admin").exec("CREATE DATABASE " + restored_db);
  std::string restored = pg_base_conninfo();
  restored.replace(restored.find("dbname=skillcard"), std::string("dbname=skillcard").size(), "dbname=" + restored_db);
  ASSERT_EQ(
      shell(std::string(kPgBin) + "/pg_restore --exit-on-error -d " + shell_quoted(restored) + " " + dump.string()), 0);
  {
    auto ledger = PgLedger::open(restored + " options='-c search_path=" + schema + "'");
    EXPECT_EQ(ledger->ledger_id(), id);
    EXPECT_EQ(ledger->list_redemptions({}), redemptions);
    const auto report = verify_audit(*ledger, std::vector<Bytes>{checkpoint}, key);
    EXPECT_TRUE(report.ok());
    EXPECT_EQ(report.checkpoints_matched, 1u);
    // Still exactly once: the same receipt is the same record; the triggers came along.
    EXPECT_EQ(ledger->record_redemption(redeem_request(first_receipt, card)).status, RecordStatus::AlreadyRecordedSame);
    auto q = pg::Db::connect(restored + " options='-c search_path=" + schema + "'");
    EXPECT_THROW(q.exec("DELETE FROM audit_log"), StorageError);
  }
  Raw(dir / "admin").exec("DROP DATABASE " + restored_db + " WITH (FORCE)");
}

TEST(PgLedger, ToolCheckpointsVerifiesAndExportsThroughAConnectionString) {
  TempDir dir;
  const auto where = dir / "ledger";
  {
    auto s = seeded_ledger(where, 1);
    for (unsigned v = 0; v < 4; ++v) {
      const auto voucher = issue_ok(
          *s.ledger, claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000000 + v), s.cards[0].number);
      s.ledger->record_redemption(
          redeem_request(receipt(voucher.id(), v + 1, nonce(NonceKind::Terminal, v)), s.cards[0].number));
    }
  }
  const auto key = crypto::OpenSsl::PrivateKey::generate();
  crypto::write_private_key(dir / "audit-signer.key.pem", key);
  crypto::write_public_key(dir / "audit-signer.pub.pem", key.public_key());
  const std::string pg = "--pg \"" + pg_conninfo_for(where) + "\"";
  const auto path = [&](const char* name) { return (dir / name).string(); };

  auto r =
      run_ledger_tool("checkpoint " + pg + " --key " + path("audit-signer.key.pem") + " --out " + path("cp-1.cose"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_ledger_tool("verify-audit " + pg + " --key " + path("audit-signer.pub.pem") + " --checkpoint " +
                      path("cp-1.cose"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1 of 1 checkpoints matched: OK"), std::string::npos) << r.output;
  r = run_ledger_tool("export " + pg + " --what settlement --format csv");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "provider,fund,count,total_fen,recovered_count,recovered_fen,net_fen\r\n10001,1,4,4000,0,0,4000\r\n");

  Raw(where).exec("DROP TRIGGER audit_log_no_delete ON audit_log; DELETE FROM audit_log WHERE seq = 3");
  r = run_ledger_tool("verify-audit " + pg + " --key " + path("audit-signer.pub.pem") + " --checkpoint-dir " +
                      dir.path().string());
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("PROBLEM gap at 3"), std::string::npos) << r.output;

  EXPECT_EQ(run_ledger_tool("export --db " + path("x.db") + " " + pg).exit_code, 2) << "one of --db and --pg";
  EXPECT_EQ(run_ledger_tool("export").exit_code, 2) << "neither";
  r = run_ledger_tool("export --pg \"" + pg_conninfo_for(dir / "empty") + "\"");
  EXPECT_EQ(r.exit_code, 1) << "an empty schema is not created by the tool: " << r.output;
  EXPECT_EQ(Raw(dir / "empty").number("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"), 0);
}

namespace {

// An insider's trigger makes every budget update of fund 3 fail: the statement is sent
// pipelined, and its failure arrives later.
void freeze_fund_3(const std::filesystem::path& where) {
  Raw(where).exec(
      "CREATE FUNCTION refuse_fund_3() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE EXCEPTION 'fund 3 frozen'; END $$; "
      "CREATE TRIGGER fund_3_frozen BEFORE UPDATE ON budgets FOR EACH ROW WHEN (NEW.fund = 3) "
      "EXECUTE FUNCTION refuse_fund_3()");
}

// Eight operations started together wait for each other: one batch.
PgOptions one_batch_of_eight() {
  PgOptions options;
  options.batch_window = std::chrono::milliseconds(1500);
  options.max_batch = 8;
  return options;
}

}  // namespace

// The writer connection is pipelined: a statement whose result is not read is only sent, and its
// failure arrives later. It must still fail its own operation alone — the rest of the batch
// commits — and never the next one.
TEST(PgLedger, FailingWriteInAPipelinedBatchFailsOnlyItsOwnOperation) {
  TempDir dir;
  const auto where = dir / "ledger";
  seeded_ledger(where, 8).ledger.reset();
  // The budget UPDATE is sent pipelined, after the voucher's INSERT, by the issue of holder 4 only.
  freeze_fund_3(where);
  auto ledger = PgLedger::open(pg_conninfo_for(where), one_batch_of_eight());
  const auto before = ledger->commit_stats();
  const auto audit_before = ledger->audit_head().count;
  std::latch start(8);
  std::vector<std::string> outcome(8);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const auto c =
          claims_for(holder(i + 1), i == 3 ? FundSource::UnemploymentInsuranceFund : FundSource::SpecialAccount);
      const auto decision = generous(*ledger, c);
      start.arrive_and_wait();
      try {
        outcome[i] = to_string(ledger->issue_voucher({c, ""}, decision, fake_minter(), clerk(), kNow).status);
      } catch (const StorageError& e) {
        outcome[i] = e.kind() == StorageErrorKind::Constraint ? "constraint" : e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto after = ledger->commit_stats();
  EXPECT_EQ(after.batches - before.batches, 1u) << "all eight in one transaction";
  EXPECT_EQ(after.batches_with_failures - before.batches_with_failures, 1u);
  for (unsigned i = 0; i < 8; ++i) {
    EXPECT_EQ(outcome[i], i == 3 ? "constraint" : "issued") << i;
    EXPECT_EQ(ledger->holder_vouchers(holder(i + 1)).size(), i == 3 ? 0u : 1u) << i;
  }
  EXPECT_EQ(ledger->audit_head().count, audit_before + 7) << "the failed issue left no audit row";
  EXPECT_EQ(ledger->budget(FundSource::UnemploymentInsuranceFund)->committed_fen, 0);
  // Serials stay gapless: the seven are 1..7 in some order.
  std::set<std::uint64_t> serials;
  for (unsigned i = 0; i < 8; ++i) {
    for (const auto& v : ledger->holder_vouchers(holder(i + 1))) serials.insert(serial_of(v.id()));
  }
  EXPECT_EQ(serials, (std::set<std::uint64_t>{1, 2, 3, 4, 5, 6, 7}));
  // The connection is healthy: the next operations on it succeed.
  EXPECT_EQ(ledger
                ->issue_voucher({claims_for(holder(4)), ""}, generous(*ledger, claims_for(holder(4))), fake_minter(),
                                clerk(), kNow)
                .status,
            IssueStatus::Issued);
  EXPECT_TRUE(
      verify_audit(*ledger, {}, crypto::OpenSsl::VerifyKey::parse(crypto::OpenSsl::PrivateKey::generate().public_key()))
          .ok());
}

// A redemption reads nothing after its checks: its row, the voucher and budget updates, its
// audit row and its RELEASE travel with the next operation's first round trip (or the batch's
// last one). A failure among them is found there, and must still fail only that redemption:
// the operations after it in the batch run again, nothing of the failed one stays, and the
// audit chain has no gap.
TEST(PgLedger, LateFailureOfAPipelinedRedemptionFailsOnlyItAndTheRestRunAgain) {
  TempDir dir;
  const auto where = dir / "ledger";
  std::vector<VoucherRecord> vouchers;
  std::vector<NewCard> cards;
  {
    auto s = seeded_ledger(where, 8);
    for (unsigned i = 0; i < 8; ++i) {
      vouchers.push_back(
          issue_ok(*s.ledger, claims_for(holder(i + 1), i == 2 || i == 5 ? FundSource::UnemploymentInsuranceFund
                                                                         : FundSource::SpecialAccount)));
    }
    cards = s.cards;
  }
  freeze_fund_3(where);
  auto ledger = PgLedger::open(pg_conninfo_for(where), one_batch_of_eight());
  const auto before = ledger->commit_stats();
  const auto audit_before = ledger->audit_head().count;
  const auto committed_before = ledger->budget(FundSource::UnemploymentInsuranceFund)->committed_fen;
  std::latch start(8);
  std::vector<std::string> outcome(8);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const auto request =
          redeem_request(receipt(vouchers[i].id(), i + 1, nonce(schemas::NonceKind::Terminal, i + 1)), cards[i].number);
      start.arrive_and_wait();
      try {
        outcome[i] = to_string(ledger->record_redemption(request).status);
      } catch (const StorageError& e) {
        outcome[i] = e.kind() == StorageErrorKind::Constraint ? "constraint" : e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto after = ledger->commit_stats();
  EXPECT_EQ(after.batches - before.batches, 1u) << "all eight in one transaction";
  EXPECT_EQ(after.failed_operations - before.failed_operations, 2u);
  for (unsigned i = 0; i < 8; ++i) {
    const bool frozen = i == 2 || i == 5;
    EXPECT_EQ(outcome[i], frozen ? "constraint" : to_string(RecordStatus::Recorded)) << i;
    EXPECT_EQ(ledger->redemption(vouchers[i].id()).has_value(), !frozen) << i;
    EXPECT_EQ(ledger->voucher(vouchers[i].id())->state, frozen ? VoucherState::Issued : VoucherState::Redeemed) << i;
  }
  EXPECT_EQ(ledger->audit_head().count, audit_before + 6) << "the failed redemptions left no audit row";
  EXPECT_EQ(ledger->budget(FundSource::UnemploymentInsuranceFund)->committed_fen, committed_before);
  EXPECT_TRUE(
      verify_audit(*ledger, {}, crypto::OpenSsl::VerifyKey::parse(crypto::OpenSsl::PrivateKey::generate().public_key()))
          .ok());
  // The connection is healthy: the frozen fund thawed, the two redeem now.
  Raw(where).exec("DROP TRIGGER fund_3_frozen ON budgets");
  for (unsigned i : {2u, 5u}) {
    EXPECT_EQ(ledger
                  ->record_redemption(redeem_request(
                      receipt(vouchers[i].id(), i + 1, nonce(schemas::NonceKind::Terminal, i + 1)), cards[i].number))
                  .status,
              RecordStatus::Recorded)
        << i;
  }
}

TEST(PgLedger, WriterLockHeldElsewhereIsBusyAfterTheLockTimeoutThenWritesGoOn) {
  TempDir dir;
  const auto where = dir / "ledger";
  PgOptions options;
  options.lock_timeout = std::chrono::milliseconds(300);
  auto ledger = PgLedger::open(pg_conninfo_for(where), options);
  ledger->set_budget(FundSource::SpecialAccount, 1000, clerk(), kNow);
  {
    Raw other(where);  // another process's writer, in the middle of its transaction
    other.exec("BEGIN; SELECT id FROM writer_lock WHERE id = 1 FOR UPDATE");
    try {
      ledger->set_budget(FundSource::SpecialAccount, 2000, clerk(), kNow);
      FAIL() << "wrote while another writer held the lock";
    } catch (const StorageError& e) {
      EXPECT_EQ(e.kind(), StorageErrorKind::Busy) << e.what();
      EXPECT_EQ(e.backend_code(), pg::sqlstate_code("55P03")) << e.what();
    }
    other.exec("COMMIT");
  }
  EXPECT_EQ(ledger->set_budget(FundSource::SpecialAccount, 3000, clerk(), kNow), BudgetStatus::Set);
  EXPECT_EQ(ledger->budget(FundSource::SpecialAccount)->allocated_fen, 3000) << "the refused write left nothing";
  EXPECT_EQ(ledger->audit_head().count, 2u);
}

// Schema version 2: a redemption's voucher update (state, state_changed_at) changes no indexed
// column and no index predicate, and the fill factor leaves its page room, so PostgreSQL makes it
// a HOT update (no index entry written). Read from the table's statistics, which the writer's
// server process reports when its connection ends (hence the ledger closed and the wait).
TEST(PgLedger, RedemptionUpdatesTheVoucherInPlaceWithoutTouchingAnyIndex) {
  TempDir dir;
  const auto where = dir / "ledger";
  constexpr int kVouchers = 12;
  struct Counts {
    std::int64_t inserted, updated, hot;
  };
  const auto counts = [&](std::int64_t inserted, std::int64_t updated) {
    Raw raw(where);
    const std::string of = " FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'vouchers'";
    Counts c{};
    for (int i = 0; i < 300; ++i) {  // until the closed connections' counts arrived (at most 30 s)
      raw.exec("SELECT pg_stat_clear_snapshot()");
      c = {raw.number("SELECT n_tup_ins" + of), raw.number("SELECT n_tup_upd" + of),
           raw.number("SELECT n_tup_hot_upd" + of)};
      if (c.inserted >= inserted && c.updated >= updated) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return c;
  };
  std::vector<VoucherRecord> vouchers;
  std::vector<NewCard> cards;
  {
    auto s = seeded_ledger(where, 1, 1'000'000'000);
    cards = s.cards;
    for (int i = 0; i < kVouchers; ++i) {
      vouchers.push_back(issue_ok(
          *s.ledger,
          claims_for(holder(1), FundSource::SpecialAccount, 1000, kNow, 1000001 + static_cast<std::uint32_t>(i)),
          cards[0].number));
    }
  }
  const auto before = counts(kVouchers, 0);
  ASSERT_EQ(before.inserted, kVouchers);
  {
    auto ledger = open_ledger(where);
    for (int i = 0; i < kVouchers; ++i) {
      const auto v = static_cast<std::size_t>(i);
      ASSERT_EQ(ledger
                    ->record_redemption(redeem_request(
                        receipt(vouchers[v].id(), static_cast<std::uint32_t>(i + 1), nonce(NonceKind::Terminal, v)),
                        cards[0].number))
                    .status,
                RecordStatus::Recorded);
    }
  }
  const auto after = counts(kVouchers, before.updated + kVouchers);
  EXPECT_EQ(after.updated - before.updated, kVouchers) << "one voucher update per redemption";
  EXPECT_EQ(after.hot - before.hot, kVouchers) << "every one of them a HOT update";
}
