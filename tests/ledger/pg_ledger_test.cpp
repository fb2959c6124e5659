// PostgreSQL-only ledger tests (the shared behavioural suite runs on PgLedger too).
#include <gtest/gtest.h>

#include "fixtures.hpp"
#include "pg_backend.hpp"
#include "skillcard/ledger/pg_ledger.hpp"

using namespace skillcard;
using namespace skillcard::ledger;
using namespace skillcard::ledger::test;

TEST(PgLedger, OpensAndMigratesAnEmptySchema) {
  TempDir dir;
  auto ledger = PgLedger::open(pg_conninfo_for(dir / "ledger"));
  EXPECT_EQ(ledger->schema_version(), kPgSchemaVersion);
}
