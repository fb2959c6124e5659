// A test VFS ("powercut") over SQLite's default unix VFS that models losing power: every write
// or truncation not yet followed by an xSync of that file is undone at the cut, and from the
// cut on every I/O call fails, as if the machine had stopped. Files keep only what was synced.
#pragma once

#include <cstdint>

namespace skillcard::ledger::test::powercut {

inline constexpr const char* kVfsName = "powercut";

void install();                        // registers the VFS once (not as the default)
void arm(std::uint64_t cut_at_write);  // cut when the cut_at_write-th write from now happens
void cut_now();                        // cut at once
bool has_cut();
std::uint64_t writes_seen();  // writes since arm()
void restore_power();         // after every connection is closed: I/O works again

}  // namespace skillcard::ledger::test::powercut
