/* The project file's schema: its application id, its versions, and the ordered migrations between them.
 * docs/store.md documents every version.
 *
 * Non-obvious choice: migrations are applied one version per transaction (each sets user_version
 * inside its own transaction), so a crash or a full disk during an upgrade leaves the file at the
 * last completed version, never half-way, and the next open resumes from there.
 *
 * Used by Project::open(); exposed for the fixture maker and the migration tests. Not thread-safe beyond
 * the Database it is given.
 */
#pragma once

#include <cstdint>
#include <string>

#include "hearth/error.h"
#include "hearth/store/database.h"

namespace hearth::store {

// PRAGMA application_id of every Hearth project: "HRTH" in ASCII.
constexpr std::int32_t HEARTH_APPLICATION_ID = 0x48525448;

// The schema version this build writes (PRAGMA user_version).
int latestSchemaVersion();

// One line per version, for docs and `project info`.
const char* schemaVersionSummary(int version);

// Applies migrations from `fromVersion` up to `toVersion` (<= latest), each in its own IMMEDIATE
// transaction. Version 0 is an empty file; migrating from it also stamps the application id. When
// `actor` is not empty, each migration past the first logs a "migrate" event in its transaction.
Expected<void> migrate(Database& db, int fromVersion, int toVersion, const std::string& actor);

}  // namespace hearth::store
