// The card image on top of the page medium: header page with magic, version, page count and
// CRC32; the write-ahead journal that makes every commit atomic across power cuts; recovery at
// power-on; and the transaction API applets write through (docs/design.md, "Journal and commit
// steps"; docs/card-os.md, "Persistent memory").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>

#include "skillcard/card/eeprom.hpp"
#include "skillcard/card/image_error.hpp"
#include "skillcard/iso7816/bytes.hpp"

namespace skillcard::card {

inline constexpr std::uint16_t kFormatVersion = 1;
inline constexpr std::size_t kJournalRecordPage = 1;
inline constexpr std::size_t kJournalImagePage = 2;  // first of the 15 page-image slots
inline constexpr std::size_t kFirstAppletPage = 17;
// Pages one commit may change, the header included (it changes with every commit's CRC).
inline constexpr std::size_t kMaxCommitPages = 15;

// A transaction touching more pages than the journal holds: a bug in the applet (its commands
// are designed to fit), never a condition of the card, so it is a logic_error.
class TransactionTooLarge : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// What recovery found in the journal at the last mount.
struct MountReport {
  enum class Journal {
    Empty,      // no commit in flight: the common case
    Replayed,   // a complete commit record: its pages were (re)written in place
    Discarded,  // a torn or stale record: the commit never reached its commit point
  };
  Journal journal = Journal::Empty;
  std::size_t pages_replayed = 0;
};

class PersistentMemory;

// Page-granular changes to the applet area, invisible until commit(). Destroying it without
// commit() discards them. At most one transaction per memory is open at a time.
class Transaction {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  // offset is relative to the area this transaction was opened on. Throws std::out_of_range
  // past the area's end and TransactionTooLarge when the commit would exceed kMaxCommitPages.
  void write(std::size_t offset, ByteView data);
  void fill(std::size_t offset, std::size_t length, std::uint8_t value);
  // The area as this transaction would leave it (pending writes over committed state).
  Bytes read(std::size_t offset, std::size_t length) const;
  // Pages this transaction changes, the header not counted.
  std::size_t pages() const noexcept { return pending_.size(); }
  // Journals and writes the pages: 2n + 2 physical page writes for n pages including the header.
  // A cut before the commit record leaves the old state, after it the new one. Throws PowerLost.
  void commit();

 private:
  friend class PersistentMemory;
  friend class AppletStorage;
  Transaction(PersistentMemory& memory, std::size_t base, std::size_t size);
  void wipe_pending() noexcept;

  PersistentMemory* memory_;
  std::size_t base_;
  std::size_t size_;
  std::map<std::size_t, std::array<std::uint8_t, kPageSize>> pending_;  // by absolute page
};

// A window of the applet area handed to one applet, so applets cannot touch each other's data.
class AppletStorage {
 public:
  AppletStorage(PersistentMemory& memory, std::size_t offset, std::size_t size);

  std::size_t size() const noexcept { return size_; }
  // Committed state. Throws std::out_of_range past the window.
  ByteView read(std::size_t offset, std::size_t length) const;
  Transaction begin();

 private:
  PersistentMemory* memory_;
  std::size_t offset_;
  std::size_t size_;
};

class PersistentMemory {
 public:
  // Takes the medium; nothing is read or checked until mount().
  explicit PersistentMemory(Eeprom eeprom);

  // Writes an empty image: header (magic, version, page count, CRC), clear journal, zeroed
  // applet area. Not tearing-safe: it is the factory's job, before the card is ever issued.
  static void format(Eeprom& eeprom);

  // Power-on: journal recovery, then the header checks (magic, version, page count, CRC).
  // Throws ImageError (the image is refused and stays unmounted) or PowerLost (a cut during
  // recovery; mounting again redoes it).
  MountReport mount();
  // Power-off: forgets the RAM view; reads and transactions need mount() again.
  void unmount() noexcept;
  bool mounted() const noexcept { return mounted_; }

  // Bytes of the applet area: pages 17..N-1.
  std::size_t size() const noexcept;
  // Committed state of the applet area. Throws std::out_of_range, std::logic_error unmounted.
  ByteView read(std::size_t offset, std::size_t length) const;
  Transaction begin();
  AppletStorage storage(std::size_t offset, std::size_t size);

  // Header CRC32 as stored (docs/design.md, "Page 0, image header").
  std::uint32_t stored_crc() const;
  // Commits since mount; the commit record carries it (diagnostic only: recovery never uses it).
  std::uint32_t sequence() const noexcept { return sequence_; }

  Eeprom& eeprom() noexcept { return eeprom_; }
  const Eeprom& eeprom() const noexcept { return eeprom_; }

 private:
  friend class Transaction;
  void check_mounted() const;
  void commit(const std::map<std::size_t, std::array<std::uint8_t, kPageSize>>& pages);

  Eeprom eeprom_;
  bool mounted_ = false;
  bool transaction_open_ = false;
  std::uint32_t sequence_ = 0;
};

// CRC32 (zlib) of an image as the header defines it: page 0 with bytes 8-11 as zero, then every
// applet page. Exposed so that tests and tools can check images independently of mount().
std::uint32_t image_crc(ByteView image);

}  // namespace skillcard::card
