// Image header, write-ahead journal, recovery and transactions over the page medium.
#include "skillcard/card/persistent_memory.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "skillcard/crypto/types.hpp"

namespace skillcard::card {

namespace {

using Page = std::array<std::uint8_t, kPageSize>;

constexpr std::uint8_t kImageMagic[4] = {'S', 'K', 'C', 'I'};
constexpr std::uint8_t kJournalMagic[4] = {'S', 'K', 'J', 'N'};
constexpr std::size_t kCrcOffset = 8;
// Record: magic 4, sequence 4, n 1, n targets, CRC32 4.
constexpr std::size_t kRecordTargets = 9;

void put16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t get32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::uint32_t crc_update(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
  return static_cast<std::uint32_t>(::crc32(crc, data, static_cast<uInt>(n)));
}

std::uint32_t header_crc_start(ByteView header) {
  Page zeroed;
  std::copy(header.begin(), header.end(), zeroed.begin());
  std::fill_n(zeroed.begin() + kCrcOffset, 4, 0);
  return crc_update(static_cast<std::uint32_t>(::crc32(0, nullptr, 0)), zeroed.data(), kPageSize);
}

bool all_zero(ByteView page) {
  return std::all_of(page.begin(), page.end(), [](std::uint8_t b) { return b == 0; });
}

// A commit record that recovery may replay: magic, 1 <= n <= 15, strictly ascending targets
// outside the journal and inside the image, and a CRC over the record and its n page images.
// Anything else (all zero, torn, stale) means the commit point was never reached.
struct Record {
  std::size_t n = 0;
  const std::uint8_t* targets = nullptr;
};

std::optional<Record> valid_record(const Eeprom& eeprom) {
  const ByteView page = eeprom.page(kJournalRecordPage);
  if (!std::equal(page.begin(), page.begin() + 4, kJournalMagic)) return std::nullopt;
  const std::size_t n = page[8];
  if (n < 1 || n > kMaxCommitPages) return std::nullopt;
  const std::uint8_t* targets = page.data() + kRecordTargets;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t t = targets[i];
    if (t >= eeprom.page_count() || (t >= kJournalRecordPage && t < kFirstAppletPage)) return std::nullopt;
    if (i > 0 && t <= targets[i - 1]) return std::nullopt;
  }
  std::uint32_t crc = crc_update(0, page.data(), kRecordTargets + n);
  for (std::size_t i = 0; i < n; ++i) crc = crc_update(crc, eeprom.page(kJournalImagePage + i).data(), kPageSize);
  if (crc != get32(page.data() + kRecordTargets + n)) return std::nullopt;
  return Record{n, targets};
}

void check_header(const Eeprom& eeprom) {
  const ByteView header = eeprom.page(0);
  if (!std::equal(header.begin(), header.begin() + 4, kImageMagic)) {
    throw ImageError(ImageError::Reason::BadMagic,
                     "corrupt image: page 0 starts with " + to_hex(header.first(4)) + ", not \"SKCI\"");
  }
  const std::uint16_t version = get16(header.data() + 4);
  if (version > kFormatVersion) {
    throw ImageError(ImageError::Reason::NewerVersion, "newer image format version " + std::to_string(version) +
                                                           ", this simulator knows " + std::to_string(kFormatVersion));
  }
  if (version < kFormatVersion) {
    throw ImageError(ImageError::Reason::OlderVersion, "older image format version " + std::to_string(version) +
                                                           ": no migration to version " +
                                                           std::to_string(kFormatVersion) + " exists");
  }
  const std::size_t declared = get16(header.data() + 6);
  if (declared != eeprom.page_count()) {
    throw ImageError(ImageError::Reason::PageCountMismatch,
                     "corrupt image: header says " + std::to_string(declared) + " pages (" +
                         std::to_string(declared * kPageSize) + " bytes) but the image holds " +
                         std::to_string(eeprom.page_count()) + " pages (" +
                         std::to_string(eeprom.page_count() * kPageSize) + " bytes)");
  }
  const std::uint32_t stored = get32(header.data() + kCrcOffset);
  const std::uint32_t actual = image_crc(eeprom.image());
  if (stored != actual) {
    throw ImageError(ImageError::Reason::BadCrc,
                     "corrupt image: header CRC32 " + to_hex(header.subspan(8, 4)) + " but the image has " +
                         to_hex(Bytes{static_cast<std::uint8_t>(actual >> 24), static_cast<std::uint8_t>(actual >> 16),
                                      static_cast<std::uint8_t>(actual >> 8), static_cast<std::uint8_t>(actual)}));
  }
}

const Page kZeroPage{};

}  // namespace

std::uint32_t image_crc(ByteView image) {
  if (image.size() % kPageSize != 0 || image.size() < kMinPages * kPageSize) {
    throw std::invalid_argument("image: not a whole image of at least 18 pages");
  }
  std::uint32_t crc = header_crc_start(image.first(kPageSize));
  const ByteView applet = image.subspan(kFirstAppletPage * kPageSize);
  return crc_update(crc, applet.data(), applet.size());
}

// --- Transaction -------------------------------------------------------------------------------

Transaction::Transaction(PersistentMemory& memory, std::size_t base, std::size_t size)
    : memory_(&memory), base_(base), size_(size) {
  memory.check_mounted();
  if (memory.transaction_open_) throw std::logic_error("a transaction is already open on this memory");
  memory.transaction_open_ = true;
}

Transaction::Transaction(Transaction&& other) noexcept
    : memory_(std::exchange(other.memory_, nullptr)),
      base_(other.base_),
      size_(other.size_),
      pending_(std::move(other.pending_)) {}

Transaction::~Transaction() {
  wipe_pending();
  if (memory_) memory_->transaction_open_ = false;
}

// The pages may hold secrets (the PIN block shares page 17 with its try counter, personalisation
// writes keys): freed map nodes must not keep them.
void Transaction::wipe_pending() noexcept {
  for (auto& entry : pending_) crypto::secure_wipe(entry.second.data(), entry.second.size());
  pending_.clear();
}

void Transaction::write(std::size_t offset, ByteView data) {
  if (!memory_) throw std::logic_error("transaction was moved from");
  if (offset > size_ || data.size() > size_ - offset) {
    throw std::out_of_range("write of " + std::to_string(data.size()) + " bytes at " + std::to_string(offset) +
                            " past the end of a " + std::to_string(size_) + "-byte area");
  }
  if (data.empty()) return;
  memory_->check_mounted();
  const std::size_t start = base_ + offset;
  const std::size_t first = kFirstAppletPage + start / kPageSize;
  const std::size_t last = kFirstAppletPage + (start + data.size() - 1) / kPageSize;
  std::size_t added = 0;
  for (std::size_t p = first; p <= last; ++p) added += pending_.count(p) == 0 ? 1u : 0u;
  // The header is always part of the commit, so applet pages get one slot less.
  if (pending_.size() + added > kMaxCommitPages - 1) {
    throw TransactionTooLarge("transaction would change " + std::to_string(pending_.size() + added) +
                              " applet pages; one commit holds at most " + std::to_string(kMaxCommitPages - 1));
  }
  for (std::size_t p = first; p <= last; ++p) {
    auto [it, inserted] = pending_.try_emplace(p);
    if (inserted) {
      const ByteView committed = memory_->eeprom_.page(p);
      std::copy(committed.begin(), committed.end(), it->second.begin());
    }
    const std::size_t page_start = (p - kFirstAppletPage) * kPageSize;
    const std::size_t from = std::max(start, page_start);
    const std::size_t to = std::min(start + data.size(), page_start + kPageSize);
    std::copy(data.begin() + static_cast<std::ptrdiff_t>(from - start),
              data.begin() + static_cast<std::ptrdiff_t>(to - start),
              it->second.begin() + static_cast<std::ptrdiff_t>(from - page_start));
  }
}

void Transaction::fill(std::size_t offset, std::size_t length, std::uint8_t value) {
  write(offset, Bytes(length, value));
}

Bytes Transaction::read(std::size_t offset, std::size_t length) const {
  if (!memory_) throw std::logic_error("transaction was moved from");
  if (offset > size_ || length > size_ - offset) {
    throw std::out_of_range("read of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                            " past the end of a " + std::to_string(size_) + "-byte area");
  }
  const ByteView committed = memory_->read(base_ + offset, length);
  Bytes out(committed.begin(), committed.end());
  for (const auto& [page, image] : pending_) {
    const std::size_t page_start = (page - kFirstAppletPage) * kPageSize;
    const std::size_t from = std::max(base_ + offset, page_start);
    const std::size_t to = std::min(base_ + offset + length, page_start + kPageSize);
    for (std::size_t i = from; i < to; ++i) out[i - base_ - offset] = image[i - page_start];
  }
  return out;
}

void Transaction::commit() {
  if (!memory_) throw std::logic_error("transaction was moved from");
  memory_->commit(pending_);
  wipe_pending();
}

// --- AppletStorage -----------------------------------------------------------------------------

AppletStorage::AppletStorage(PersistentMemory& memory, std::size_t offset, std::size_t size)
    : memory_(&memory), offset_(offset), size_(size) {}

ByteView AppletStorage::read(std::size_t offset, std::size_t length) const {
  if (offset > size_ || length > size_ - offset) {
    throw std::out_of_range("read of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                            " past the end of a " + std::to_string(size_) + "-byte storage window");
  }
  return memory_->read(offset_ + offset, length);
}

Transaction AppletStorage::begin() { return Transaction(*memory_, offset_, size_); }

// --- PersistentMemory --------------------------------------------------------------------------

PersistentMemory::PersistentMemory(Eeprom eeprom) : eeprom_(std::move(eeprom)) {}

void PersistentMemory::format(Eeprom& eeprom) {
  const std::size_t pages = eeprom.page_count();
  for (std::size_t p = 1; p < pages; ++p) eeprom.write_page(p, kZeroPage);
  Page header{};
  std::copy(std::begin(kImageMagic), std::end(kImageMagic), header.begin());
  put16(header.data() + 4, kFormatVersion);
  put16(header.data() + 6, static_cast<std::uint16_t>(pages));
  // Every applet page is zero now, so the CRC can be computed without writing page 0 first.
  std::uint32_t crc = header_crc_start(header);
  for (std::size_t p = kFirstAppletPage; p < pages; ++p) crc = crc_update(crc, kZeroPage.data(), kPageSize);
  put32(header.data() + kCrcOffset, crc);
  eeprom.write_page(0, header);
  eeprom.barrier();
}

MountReport PersistentMemory::mount() {
  mounted_ = false;
  transaction_open_ = false;
  MountReport report;
  // Recovery first: a torn header page can only exist while a valid record is in the journal,
  // and replaying that record is what repairs it.
  if (const auto record = valid_record(eeprom_)) {
    const std::vector<std::uint8_t> targets(record->targets, record->targets + record->n);
    for (std::size_t i = 0; i < targets.size(); ++i) {
      Page image;
      const ByteView journal = eeprom_.page(kJournalImagePage + i);
      std::copy(journal.begin(), journal.end(), image.begin());
      eeprom_.write_page(targets[i], image);
    }
    eeprom_.barrier();
    eeprom_.write_page(kJournalRecordPage, kZeroPage);
    eeprom_.barrier();
    report.journal = MountReport::Journal::Replayed;
    report.pages_replayed = targets.size();
  }
  check_header(eeprom_);
  // A record that is not valid is cleared only once the image is known to be ours, so that a
  // refused file is never written to.
  if (report.journal == MountReport::Journal::Empty && !all_zero(eeprom_.page(kJournalRecordPage))) {
    eeprom_.write_page(kJournalRecordPage, kZeroPage);
    eeprom_.barrier();
    report.journal = MountReport::Journal::Discarded;
  }
  mounted_ = true;
  sequence_ = 0;
  return report;
}

void PersistentMemory::unmount() noexcept { mounted_ = false; }

std::size_t PersistentMemory::size() const noexcept { return (eeprom_.page_count() - kFirstAppletPage) * kPageSize; }

void PersistentMemory::check_mounted() const {
  if (!mounted_) throw std::logic_error("persistent memory is not mounted (card powered off or image refused)");
}

ByteView PersistentMemory::read(std::size_t offset, std::size_t length) const {
  check_mounted();
  if (offset > size() || length > size() - offset) {
    throw std::out_of_range("read of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                            " past the end of the " + std::to_string(size()) + "-byte applet area");
  }
  return eeprom_.image().subspan(kFirstAppletPage * kPageSize + offset, length);
}

Transaction PersistentMemory::begin() { return Transaction(*this, 0, size()); }

AppletStorage PersistentMemory::storage(std::size_t offset, std::size_t size) {
  if (offset > this->size() || size > this->size() - offset) {
    throw std::out_of_range("storage window of " + std::to_string(size) + " bytes at " + std::to_string(offset) +
                            " past the end of the " + std::to_string(this->size()) + "-byte applet area");
  }
  return AppletStorage(*this, offset, size);
}

std::uint32_t PersistentMemory::stored_crc() const { return get32(eeprom_.page(0).data() + kCrcOffset); }

void PersistentMemory::commit(const std::map<std::size_t, Page>& pages) {
  check_mounted();
  if (pages.empty()) return;
  try {
    // The new header: same fields, CRC over the image as it will be once the commit is done.
    // CRC32 is linear, so only the changed pages need hashing: for equal-length messages
    // crc(M') = crc(M) ^ raw(M ^ M'), and raw() of one page's difference followed by t bytes is
    // raw(difference) shifted over t zero bytes, which is what crc32_combine(r, 0, t) computes.
    // Mount checks the result against a full computation.
    Page header;
    const ByteView current = eeprom_.page(0);
    std::copy(current.begin(), current.end(), header.begin());
    static const std::uint32_t zero_page_crc = crc_update(0, kZeroPage.data(), kPageSize);
    std::uint32_t crc = get32(header.data() + kCrcOffset);
    for (const auto& [p, image] : pages) {
      Page difference;
      const ByteView old_page = eeprom_.page(p);
      for (std::size_t i = 0; i < kPageSize; ++i) difference[i] = static_cast<std::uint8_t>(old_page[i] ^ image[i]);
      const std::uint32_t raw = crc_update(0, difference.data(), kPageSize) ^ zero_page_crc;
      const auto bytes_after = static_cast<z_off_t>((eeprom_.page_count() - 1 - p) * kPageSize);
      crc ^= static_cast<std::uint32_t>(::crc32_combine(raw, 0, bytes_after));
    }
    put32(header.data() + kCrcOffset, crc);

    std::vector<std::pair<std::size_t, const Page*>> all;
    all.reserve(pages.size() + 1);
    all.emplace_back(0, &header);
    for (const auto& [p, image] : pages) all.emplace_back(p, &image);

    // Step 1: page images into the journal.
    for (std::size_t i = 0; i < all.size(); ++i) eeprom_.write_page(kJournalImagePage + i, *all[i].second);
    eeprom_.barrier();
    // Step 2: the commit record, the commit point.
    Page record{};
    std::copy(std::begin(kJournalMagic), std::end(kJournalMagic), record.begin());
    put32(record.data() + 4, sequence_ + 1);
    record[8] = static_cast<std::uint8_t>(all.size());
    for (std::size_t i = 0; i < all.size(); ++i) record[kRecordTargets + i] = static_cast<std::uint8_t>(all[i].first);
    std::uint32_t record_crc = crc_update(0, record.data(), kRecordTargets + all.size());
    for (const auto& entry : all) record_crc = crc_update(record_crc, entry.second->data(), kPageSize);
    put32(record.data() + kRecordTargets + all.size(), record_crc);
    eeprom_.write_page(kJournalRecordPage, record);
    eeprom_.barrier();
    // Step 3: pages in place.
    for (const auto& [p, image] : all) eeprom_.write_page(p, *image);
    eeprom_.barrier();
    // Step 4: clear the record, so that the next commit starts from an empty journal.
    eeprom_.write_page(kJournalRecordPage, kZeroPage);
    ++sequence_;
  } catch (const PowerLost&) {
    // The journal may be mid-commit: only recovery at the next mount may read this image again.
    mounted_ = false;
    throw;
  }
}

}  // namespace skillcard::card
