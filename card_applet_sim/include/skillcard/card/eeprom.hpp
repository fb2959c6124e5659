// The card's physical persistent medium: an array of 64-byte pages written one page at a time,
// kept in RAM and optionally written through to an image file, with the power-cut injector that
// the tearing tests use to stop the card before, during or after any page write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "skillcard/card/image_error.hpp"
#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::card {

// A typical EEPROM/flash page of a contact smart card (docs/design.md, "Card data model"): the
// unit of atomicity. A write that is cut leaves the page holding arbitrary bytes.
inline constexpr std::size_t kPageSize = 64;

// Power went away: the medium accepts no more writes until power is restored. Unwinds the
// command that was running; the card runtime then powers off. Applets must let it pass.
class PowerLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where the injected cut falls relative to the armed write.
enum class CutMode {
  Before,  // the write does not happen
  During,  // the page is left with a deterministic mix of old bytes, new bytes and garbage
  After,   // the write completes, then power goes
};

// "Cut power at the write with this index", counting physical page writes from 0 at the moment
// the plan is armed. The seed makes a During cut's garbage reproducible.
struct PowerCut {
  std::uint64_t write_index = 0;
  CutMode mode = CutMode::Before;
  std::uint64_t seed = 0;
};

// What survives a crash of the simulator process or of the whole machine. Each physical page
// write is a pwrite() of its 64 bytes to the image file in both cases.
enum class Durability {
  // No fsync: the page cache outlives a killed process, so killing the simulator behaves like a
  // power cut. An operating-system crash may lose or reorder recent writes.
  Process,
  // fdatasync() at each of the journal's three ordering barriers, so an OS crash or a real power
  // loss also leaves one of the states a cut could: costs three disk flushes per commit.
  System,
};

class Eeprom {
 public:
  // Zero-filled pages in RAM only (unit tests, fuzzing, benchmarks).
  static Eeprom in_memory(std::size_t page_count);
  // These exact bytes in RAM only; the size must be a whole number of pages (ImageError
  // WrongSize otherwise). For tests that craft broken images.
  static Eeprom from_bytes(ByteView image);
  // Loads an existing image file and writes through to it. Throws ImageError: Unreadable (cannot
  // open or read), WrongSize (not a whole number of pages, or outside kMinPages..kMaxPages).
  static Eeprom open_file(const std::filesystem::path& path, Durability durability = Durability::Process);
  // Creates a new zero-filled image file of page_count pages (mode 0600); refuses to replace an
  // existing file (ImageError Unreadable naming the path, errno EEXIST).
  static Eeprom create_file(const std::filesystem::path& path, std::size_t page_count,
                            Durability durability = Durability::Process);

  Eeprom(Eeprom&&) noexcept;
  Eeprom& operator=(Eeprom&&) noexcept;
  ~Eeprom();

  std::size_t page_count() const noexcept;
  ByteView page(std::size_t number) const;
  ByteView image() const noexcept;
  // A RAM-only copy with the same bytes and no armed cut (test snapshots).
  Eeprom clone() const;

  // Writes exactly kPageSize bytes. Throws std::out_of_range / std::invalid_argument for a bad
  // page number or size (programming errors), PowerLost when power is off, when an armed cut
  // fires, or when the image file cannot be written (the medium failing mid-write is a cut too).
  void write_page(std::size_t number, ByteView data);
  // Orders the writes before it before the writes after it, as far as durability() promises.
  void barrier();

  // Physical page writes attempted since this medium was created or loaded, including one that
  // a cut interrupted. The runtime subtracts two readings to count a command's writes.
  std::uint64_t writes() const noexcept;

  void arm(PowerCut cut);
  void disarm() noexcept;
  std::optional<PowerCut> armed() const noexcept;
  // True from a cut (or a write failure) until restore_power(); no write succeeds meanwhile.
  bool power_lost() const noexcept;
  void restore_power() noexcept;

  Durability durability() const noexcept;
  // The image file, or empty for a RAM-only medium.
  const std::filesystem::path& path() const noexcept;

 private:
  struct State;
  explicit Eeprom(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace skillcard::card
