/* Internal to app/store: appending to and hashing the append-only event log, and clock helpers.
 *
 * Non-obvious choice: each hashed field is length-prefixed ("<bytes>:<text>") before hashing, so no
 * choice of field contents can make two different events hash the same input (no delimiter games).
 */
#pragma once

#include <optional>
#include <string>

#include "hearth/error.h"
#include "hearth/store/database.h"
#include "hearth/store/records.h"

namespace hearth::store::detail {

// 64 zeros: the prevHash of the first event.
extern const std::string GENESIS_HASH;

// The hash an event must carry, from its prevHash and content fields (its own `hash` is ignored).
std::string eventHash(const Event& e);

// Appends one event inside the caller's open transaction: reads the last hash, hashes, inserts.
// The caller must hold a write transaction (Transaction::begin) so that no other writer interleaves.
Expected<Id> appendEvent(Database& db, const std::string& actor, const std::string& action,
                         const std::string& entity, std::optional<Id> entityId, const std::string& payload);

// Now as ISO 8601 UTC with milliseconds: "2026-11-28T07:08:00.123Z".
std::string nowIso();
// Seconds since the Unix epoch, with sub-second precision.
double nowSeconds();

}  // namespace hearth::store::detail
