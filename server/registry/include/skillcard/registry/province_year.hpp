// A realistic province year for reports, tests and benchmarks (#9): the registry's people and
// outside subsidies (generator.hpp) and, written through the Ledger API into a ledger, one card
// per person, their vouchers (P1 ≤ 3 a CST year counting outside subsidies, P2 ≤ 1 from the
// employment subsidy fund, P3/P4 each occupation and level once), the cards' redemptions with
// counters 1, 2, 3 …, some reversals, voids and unwritten vouchers, skill certificates, and
// about 1 % of redeemed trainings reported a second time by the other business system.
// At scale 1: 300 000 people and about 600 000 vouchers over Hubei's 17 cities.
//
// Tokens, card certificates and receipts carry a placeholder signature: the data is for reports
// and benchmarks, which never verify signatures (the service does, before the ledger).
#pragma once

#include <functional>

#include "skillcard/ledger/ledger.hpp"
#include "skillcard/registry/generator.hpp"

namespace skillcard::registry {

struct ProvinceYearOptions {
  double scale = 1.0;  // people = 300 000 × scale (at least 1)
  std::uint64_t seed = 1;
  int year = 2026;
  // Concurrent writers: the ledger group-commits their operations into shared transactions.
  std::size_t threads = 32;
};

struct ProvinceYearStats {
  std::size_t people = 0;
  std::size_t outside_subsidies = 0;
  std::size_t cards = 0;
  std::size_t vouchers = 0;
  std::size_t written = 0;
  std::size_t redeemed = 0;  // redemptions recorded (reversed ones included)
  std::size_t reversed = 0;
  std::size_t voided = 0;
  std::size_t certificates = 0;
  // Redeemed trainings the other business system reports again (outside subsidies with the
  // same holder, occupation and level, dated 1-10 days after the redemption): P18 counts each once.
  std::size_t double_reports = 0;
};

// Training providers of the generated year: 30 per city, ids 10000 + 100 × city index + n;
// n = 0 is the city's provincial high-skill training base.
std::uint32_t generated_provider(std::size_t city_index, std::uint32_t n);

// Fills `ledger` (which should be empty) and returns the registry data it is consistent with.
// Deterministic for a seed up to the order in which concurrent writers get their serials.
// Throws std::runtime_error if the ledger refuses anything (a generator bug).
GeneratedData generate_province_year(ledger::Ledger& ledger, const ProvinceYearOptions& options,
                                     const std::function<crypto::HolderRef(std::string_view)>& holder_ref,
                                     ProvinceYearStats* stats = nullptr);

}  // namespace skillcard::registry
