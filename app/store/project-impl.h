/* Internal to app/store: the state behind a Project handle and helpers shared by its source files.
 *
 * Non-obvious choice: the metric-name cache is cleared whenever a metric transaction fails, because a
 * rolled-back INSERT into metric_names would otherwise leave the cache holding an id that does not exist.
 */
#pragma once

#include <optional>
#include <string>
#include <unordered_map>

#include "event-log.h"
#include "hearth/store/database.h"
#include "hearth/store/project.h"

namespace hearth::store {

struct Project::Impl {
  Database db;
  int schemaVersion = 0;
  std::string actor;
  std::unordered_map<std::string, Id> metricNameIds;

  // The id of a metric name; 0 when absent and !create. Inside a write transaction when create.
  Expected<Id> metricNameId(const std::string& name, bool create);

  // Appends an event inside the caller's transaction.
  Expected<Id> log(const std::string& action, const std::string& entity, std::optional<Id> id,
                   const std::string& payload) {
    return detail::appendEvent(db, actor, action, entity, id, payload);
  }
  Error notFound(const std::string& what, Id id) const {
    return Error{ErrorCode::not_found, "project '" + db.path() + "': no " + what + " with id " + std::to_string(id), {}};
  }
  // Prefixes an error's message with what was being done.
  Error context(Error e, const std::string& what) const {
    e.message = e.message + " (while " + what + ")";
    return e;
  }
};

namespace detail {
// This process's identity for run ownership.
std::string hostName();
std::string processStart(long pid);  // "<boot id>:<start ticks>", empty when unknown
// False only when the owner is known to be gone (on this host); true when alive or unknowable.
bool ownerAlive(std::int64_t pid, const std::string& host, const std::string& start);
}  // namespace detail

}  // namespace hearth::store
