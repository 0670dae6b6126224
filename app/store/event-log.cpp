/* The event log's hash chain: the canonical hashed form of an event and the append path.
 *
 * Non-obvious choice: the hash covers the event's id as well as its content, so moving a row (changing
 * its id) breaks the chain exactly like editing its text does.
 */
#include "event-log.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "hearth/store/sha256.h"

namespace hearth::store::detail {

const std::string GENESIS_HASH(64, '0');

namespace {
void field(Sha256& h, const std::string& s) {
  std::string len = std::to_string(s.size()) + ":";
  h.update(len);
  h.update(s);
}
}  // namespace

std::string eventHash(const Event& e) {
  Sha256 h;
  field(h, "hearth-event-v1");
  field(h, e.prevHash);
  field(h, std::to_string(e.id));
  field(h, e.at);
  field(h, e.actor);
  field(h, e.action);
  field(h, e.entity);
  field(h, e.entityId ? std::to_string(*e.entityId) : std::string("-"));
  field(h, e.payload);
  return h.finishHex();
}

Expected<Id> appendEvent(Database& db, const std::string& actor, const std::string& action,
                         const std::string& entity, std::optional<Id> entityId, const std::string& payload) {
  Event e;
  {
    HEARTH_TRY(Statement last, db.prepare("SELECT id, hash FROM events ORDER BY id DESC LIMIT 1"));
    HEARTH_TRY(bool row, last.step());
    e.id = row ? last.int64(0) + 1 : 1;
    e.prevHash = row ? last.text(1) : GENESIS_HASH;
  }
  e.at = nowIso();
  e.actor = actor;
  e.action = action;
  e.entity = entity;
  e.entityId = entityId;
  e.payload = payload;
  e.hash = eventHash(e);
  HEARTH_TRY(Statement ins, db.prepare(
      "INSERT INTO events(id, at, actor, action, entity, entity_id, payload, prev_hash, hash) "
      "VALUES(?,?,?,?,?,?,?,?,?)"));
  ins.bind(1, e.id).bind(2, e.at).bind(3, e.actor).bind(4, e.action).bind(5, e.entity);
  ins.bind(6, e.entityId).bind(7, e.payload).bind(8, e.prevHash).bind(9, e.hash);
  HEARTH_TRY_VOID(ins.exec());
  return e.id;
}

std::string nowIso() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

double nowSeconds() {
  auto now = std::chrono::system_clock::now();
  return std::chrono::duration<double>(now.time_since_epoch()).count();
}

}  // namespace hearth::store::detail
