// Strict, deterministic CBOR over libcbor (private to schemas/: libcbor never appears in a
// public header). Decoding first walks the bytes with our own validator, so that libcbor's
// cbor_load only ever sees input whose every declared length fits what is actually there
// (libcbor 0.8 allocates a declared size before checking it: 9A 10 00 00 00 would make it zero
// 2 GiB), and so that everything not deterministic (RFC 8949 §4.2.1) is refused with a reason.
#pragma once

#include <cbor.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "skillcard/iso7816/bytes.hpp"
#include "skillcard/schemas/errors.hpp"

namespace skillcard::schemas::cbor {

struct Limits {
  std::size_t max_size;
  std::size_t max_depth = 8;
};

// Checks that `in` is exactly one well-formed, deterministic CBOR item within the limits.
// `what` names the structure in errors.
void validate(ByteView in, const Limits& limits, std::string_view what);

// Owns one reference to a libcbor item.
struct ItemRelease {
  void operator()(cbor_item_t* item) const noexcept;
};
using Item = std::unique_ptr<cbor_item_t, ItemRelease>;

// validate() then cbor_load(). Tags are allowed only on the outermost item (COSE_Sign1's 18):
// libcbor 0.8 refuses tags 6..20 as "unassigned", so load() takes the outer tag off itself and
// reports it in `tag` (when the caller passes somewhere to put it; otherwise a tag is refused).
Item load(ByteView in, const Limits& limits, std::string_view what, std::optional<std::uint64_t>* tag = nullptr);

// --- building (deterministic: shortest integers, definite lengths, sorted map keys) -------
Item make_uint(std::uint64_t value);
Item make_int(std::int64_t value);
Item make_bytes(ByteView value);
Item make_text(std::string_view value);
Item make_array(std::vector<Item> items);
// Sorts the entries by the bytewise order of their encoded keys; duplicate keys are a bug.
Item make_map(std::vector<std::pair<Item, Item>> entries);
Item make_tag(std::uint64_t tag, Item item);
Bytes serialize(const cbor_item_t* item);

// --- reading ------------------------------------------------------------------------------
std::uint64_t as_uint(const cbor_item_t* item, const std::string& field);
std::int64_t as_int(const cbor_item_t* item, const std::string& field);
ByteView as_bytes(const cbor_item_t* item, const std::string& field);
std::string_view as_text(const cbor_item_t* item, const std::string& field);
std::vector<const cbor_item_t*> as_array(const cbor_item_t* item, const std::string& field);
const char* type_name(const cbor_item_t* item);

// Reads a map with integer keys field by field and refuses whatever it did not read.
class MapReader {
 public:
  // `structure` e.g. "voucher token"; the map must have only integer keys.
  MapReader(const cbor_item_t* map, std::string structure);

  // Key -1, the format version: required, 1..known. A higher version is NewerFormat. Call it
  // first, so that a newer format's keys are reported as a newer format, not unknown keys.
  std::uint64_t version(std::uint64_t known);

  std::uint64_t uint(std::int64_t key, std::string_view name, std::uint64_t min, std::uint64_t max);
  std::optional<std::uint64_t> optional_uint(std::int64_t key, std::string_view name, std::uint64_t min,
                                             std::uint64_t max);
  Bytes bytes(std::int64_t key, std::string_view name, std::size_t min_size, std::size_t max_size);
  std::string text(std::int64_t key, std::string_view name, std::size_t min_size, std::size_t max_size);
  std::optional<std::vector<std::uint64_t>> optional_uint_array(std::int64_t key, std::string_view name,
                                                                std::uint64_t min, std::uint64_t max,
                                                                std::size_t max_count);
  std::vector<Bytes> bytes_array(std::int64_t key, std::string_view name, std::size_t size, std::size_t max_count);
  // The raw item for fields a codec reads itself (nested maps); null if absent.
  const cbor_item_t* find(std::int64_t key, std::string_view name);
  const cbor_item_t* require(std::int64_t key, std::string_view name);

  // Refuses keys nobody read.
  void finish() const;
  std::string field(std::int64_t key, std::string_view name) const;

 private:
  struct Entry {
    std::int64_t key;
    const cbor_item_t* value;
    bool read = false;
  };
  Entry* lookup(std::int64_t key, std::string_view name);
  std::string structure_;
  std::vector<Entry> entries_;
};

// Writes a map with integer keys; encode() sorts them canonically.
class MapWriter {
 public:
  MapWriter& uint(std::int64_t key, std::uint64_t value);
  MapWriter& bytes(std::int64_t key, ByteView value);
  MapWriter& text(std::int64_t key, std::string_view value);
  MapWriter& uint_array(std::int64_t key, const std::vector<std::uint64_t>& values);
  MapWriter& bytes_array(std::int64_t key, const std::vector<Bytes>& values);
  MapWriter& item(std::int64_t key, Item value);
  Item build();
  Bytes encode();

 private:
  std::vector<std::pair<Item, Item>> entries_;
};

}  // namespace skillcard::schemas::cbor
