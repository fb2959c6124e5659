// Strict, deterministic CBOR (private to schemas/: libcbor never appears in a public header).
// Decoding is our own validator's single pass over the bytes: it refuses everything not
// deterministic (RFC 8949 §4.2.1) with a reason, and records each item as a Node that points
// into the input — no allocation per item and no second parse. (libcbor's cbor_load, used here
// before, allocated every item and, in 0.8, allocated a declared size before checking it:
// 9A 10 00 00 00 would have made it zero 2 GiB.) Encoding builds libcbor items and serializes
// them, with map keys sorted canonically.
#pragma once

#include <cbor.h>

#include <cstdint>
#include <exception>
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

// One decoded item. Its subtree follows it in the same array: the first child (an array's
// first element, a map's first key, a tag's content) is at this + 1, the next sibling at
// this + extent. Bytes and text point into the decoded input, which must outlive the Tree.
enum class Major : std::uint8_t { Uint, Negint, Bytes, Text, Array, Map, Tag, Simple };
struct Node {
  Major major;
  std::uint32_t extent;      // nodes in this item's subtree, itself included
  std::uint64_t value;       // the head's argument: value, length, count of items or pairs, tag, simple value
  const std::uint8_t* data;  // bytes and text: the content
  const Node* first() const { return this + 1; }
  const Node* next() const { return this + extent; }
};
inline constexpr std::uint64_t kSimpleFalse = 20, kSimpleTrue = 21, kSimpleNull = 22, kSimpleUndefined = 23;

class Tree {
 public:
  const Node* root() const { return nodes_.data() + root_; }

 private:
  friend Tree load(ByteView, const Limits&, std::string_view, std::optional<std::uint64_t>*);
  std::vector<Node> nodes_;
  std::size_t root_ = 0;
};

// Validates `in` and returns its items. Tags are allowed only on the outermost item (COSE_Sign1's
// 18): load() takes that tag off and reports it in `tag` (when the caller passes somewhere to put
// it; otherwise a tag is refused).
Tree load(ByteView in, const Limits& limits, std::string_view what, std::optional<std::uint64_t>* tag = nullptr);

// Owns one reference to a libcbor item (the encoder's).
struct ItemRelease {
  void operator()(cbor_item_t* item) const noexcept;
};
using Item = std::unique_ptr<cbor_item_t, ItemRelease>;

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
// `field` names the item in errors only; these run for every item of every token, so they take
// a view and build no string unless they throw.
bool is_int(const Node* item);
std::uint64_t as_uint(const Node* item, std::string_view field);
std::int64_t as_int(const Node* item, std::string_view field);
ByteView as_bytes(const Node* item, std::string_view field);
std::string_view as_text(const Node* item, std::string_view field);
std::vector<const Node*> as_array(const Node* item, std::string_view field);
std::vector<std::pair<const Node*, const Node*>> as_map(const Node* item, std::string_view field);
const char* type_name(const Node* item);

// Reads a map with integer keys field by field and refuses whatever it did not read.
class MapReader {
 public:
  // `structure` e.g. "voucher token"; the map must have only integer keys.
  MapReader(const Node* map, std::string structure);

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
  const Node* find(std::int64_t key, std::string_view name);
  const Node* require(std::int64_t key, std::string_view name);

  // Refuses keys nobody read.
  void finish() const;
  std::string field(std::int64_t key, std::string_view name) const;

 private:
  struct Entry {
    std::int64_t key;
    const Node* value;
    bool read = false;
  };
  Entry* lookup(std::int64_t key, std::string_view name);
  std::string structure_;
  std::vector<Entry> entries_;
  std::exception_ptr bad_key_;  // the first key that is no 64-bit integer, thrown at the first read
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
