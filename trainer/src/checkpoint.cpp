/* Checkpoints: a folder step-<N> with state.safetensors (params and AdamW moments, F32) and
 * state.json (counters, data position, the config), written atomically.
 *
 * Non-obvious choices:
 * - The safetensors file is streamed straight from the Params and the optimizer's moments (header,
 *   then each tensor's bytes), not built in memory first, so saving a full fine-tune does not need a
 *   second copy of three times the model. It is read back with the engine's checked reader.
 * - Atomicity: everything goes into step-<N>.tmp; each file is fsync'd, then the folder, then it is
 *   renamed to step-<N> and the parent folder is fsync'd. latest_checkpoint() only accepts names
 *   step-<digits> holding both files, so a half-written .tmp is never taken for a checkpoint.
 * - load_checkpoint() checks every name, shape and dtype before it changes anything, so a failed
 *   load leaves the model and the optimizer as they were.
 */
#include "hearth/trainer/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "hearth/safetensors.h"

namespace hearth::train {

namespace fs = std::filesystem;

namespace {

constexpr int CHECKPOINT_VERSION = 1;
constexpr const char* TENSOR_FILE = "state.safetensors";
constexpr const char* STATE_FILE = "state.json";

Unexpected io_error(const fs::path& p, int err, const std::string& doing) {
  std::string hint;
  if (err == ENOSPC || err == EFBIG || err == EDQUOT)
    hint = "the disk is full (or a file size limit was reached); free some space, the previous checkpoints "
           "are intact";
  return make_error(ErrorCode::io, "cannot " + doing + " " + p.string() + ": " + std::strerror(err), hint);
}

// A file descriptor closed on scope exit (errors on the explicit close() are reported).
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Expected<void> write_all(int fd, const void* data, size_t n, const fs::path& p) {
  const char* c = static_cast<const char*>(data);
  while (n > 0) {
    // Chunks of at most 64 MiB: some kernels cap one write() at about 2 GiB anyway.
    ssize_t w = ::write(fd, c, std::min<size_t>(n, size_t(64) << 20));
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_error(p, errno, "write");
    }
    if (w == 0) return io_error(p, EIO, "write");
    c += w;
    n -= size_t(w);
  }
  return {};
}

struct Blob {
  const void* data;
  size_t nbytes;
};

// Creates `p`, writes the pieces, fsyncs and closes it.
Expected<void> write_file(const fs::path& p, const std::vector<Blob>& pieces) {
  Fd f;
  f.fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f.fd < 0) return io_error(p, errno, "create");
  for (const Blob& b : pieces) HEARTH_TRY_VOID(write_all(f.fd, b.data, b.nbytes, p));
  if (::fsync(f.fd) != 0) return io_error(p, errno, "sync");
  int fd = f.fd;
  f.fd = -1;
  if (::close(fd) != 0) return io_error(p, errno, "close");
  return {};
}

Expected<void> sync_dir(const fs::path& p) {
  Fd f;
  f.fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (f.fd < 0) return io_error(p, errno, "open folder");
  if (::fsync(f.fd) != 0 && errno != EINVAL) return io_error(p, errno, "sync folder");
  return {};
}

// step-<digits> -> N; anything else (step-3.tmp, notes) -> nullopt.
std::optional<int64_t> step_of(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() == 5 || name.size() > 5 + 18) return std::nullopt;
  int64_t n = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

bool is_complete(const fs::path& d) {
  std::error_code ec;
  return fs::is_directory(d, ec) && fs::is_regular_file(d / TENSOR_FILE, ec) && fs::is_regular_file(d / STATE_FILE, ec);
}

std::vector<std::pair<int64_t, fs::path>> complete_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto n = step_of(it->path().filename().string());
    if (n && is_complete(it->path())) out.emplace_back(*n, it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// FNV-1a, 64 bits: guards the stored config against edits and damage (not a security hash).
std::string fnv1a_hex(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

// The config as stored: a JSON object when the text is one (readable in state.json), else a string.
nlohmann::ordered_json config_value(const std::string& text) {
  if (text.empty()) return "";
  auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return text;
  return j;
}
std::string config_text(const nlohmann::ordered_json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

double json_number(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nan("");
  return it->get<double>();
}

}  // namespace

Expected<fs::path> save_checkpoint(const fs::path& dir, const TrainState& state, const std::vector<const Param*>& params,
                                   AdamW& optimizer, int64_t keep) {
  if (state.step < 0) return make_error(ErrorCode::invalid_argument, "checkpoint step must be >= 0");
  auto& m = optimizer.m();
  auto& v = optimizer.v();
  if (m.size() != params.size() || v.size() != params.size())
    return make_error(ErrorCode::invalid_argument,
                      "checkpoint: the optimizer holds " + std::to_string(m.size()) + " tensors, the model " +
                          std::to_string(params.size()),
                      "make the AdamW from the same trainable params");
  std::set<std::string> names;
  for (size_t i = 0; i < params.size(); ++i) {
    const Param& p = *params[i];
    const size_t n = size_t(p.numel());
    if (p.name.empty() || !names.insert(p.name).second)
      return make_error(ErrorCode::invalid_argument, "checkpoint: param name '" + p.name + "' is empty or repeated");
    if (p.value.size() != n || m[i].size() != n || v[i].size() != n)
      return make_error(ErrorCode::invalid_argument,
                        "checkpoint: " + p.name + " holds a different number of values than its shape " +
                            shape_text(p.shape) + " says");
  }

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return io_error(dir, ec.value(), "create folder");
  const std::string base = "step-" + std::to_string(state.step);
  const fs::path final_dir = dir / base;
  const fs::path tmp_dir = dir / (base + ".tmp");
  fs::remove_all(tmp_dir, ec);
  if (!fs::create_directory(tmp_dir, ec)) return io_error(tmp_dir, ec ? ec.value() : EEXIST, "create folder");

  auto fail_clean = [&](Error e) {
    std::error_code ec2;
    fs::remove_all(tmp_dir, ec2);
    return Unexpected{std::move(e)};
  };

  // state.safetensors: header, then params, m, v in the order the header lists them.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = {{"format", "hearth-checkpoint"}, {"version", std::to_string(CHECKPOINT_VERSION)}};
  std::vector<Blob> blobs;
  blobs.push_back({nullptr, 0});  // length, filled below
  blobs.push_back({nullptr, 0});  // header text
  uint64_t offset = 0;
  auto add = [&](const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& data) {
    const uint64_t nbytes = uint64_t(data.size()) * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    blobs.push_back({data.data(), size_t(nbytes)});
  };
  for (const Param* p : params) add(p->name, p->shape, p->value);
  for (size_t i = 0; i < params.size(); ++i) add("optim.m." + params[i]->name, params[i]->shape, m[i]);
  for (size_t i = 0; i < params.size(); ++i) add("optim.v." + params[i]->name, params[i]->shape, v[i]);
  std::string header_text = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  uint64_t header_len = header_text.size();
  unsigned char len_le[8];
  for (int i = 0; i < 8; ++i) len_le[i] = (unsigned char)(header_len >> (8 * i));
  blobs[0] = {len_le, 8};
  blobs[1] = {header_text.data(), header_text.size()};
  if (auto r = write_file(tmp_dir / TENSOR_FILE, blobs); !r) return fail_clean(r.error());

  // state.json
  const auto cfg = config_value(state.config_json);
  nlohmann::ordered_json js;
  js["format"] = "hearth-checkpoint";
  js["version"] = CHECKPOINT_VERSION;
  js["step"] = state.step;
  js["optimizer_steps"] = optimizer.steps_taken();
  js["tokens_seen"] = state.tokens_seen;
  js["elapsed_s"] = state.elapsed_s;
  js["energy_j"] = state.energy_j;
  js["data"] = {{"epoch", state.data.epoch}, {"index", state.data.index}};
  js["dropout_counter"] = state.dropout_counter;
  js["best_val_loss"] = state.best_val_loss;
  js["tensors"] = params.size();
  js["config_hash"] = fnv1a_hex(config_text(cfg));
  js["config"] = cfg;
  const std::string json_text = js.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  if (auto r = write_file(tmp_dir / STATE_FILE, {{json_text.data(), json_text.size()}}); !r)
    return fail_clean(r.error());
  if (auto r = sync_dir(tmp_dir); !r) return fail_clean(r.error());

  // Replace an older checkpoint of the same step (a stop right after a periodic save) only now.
  const fs::path old_dir = dir / (base + ".old");
  bool had_old = false;
  if (fs::exists(final_dir, ec)) {
    fs::remove_all(old_dir, ec);
    fs::rename(final_dir, old_dir, ec);
    if (ec) return fail_clean(io_error(final_dir, ec.value(), "move aside").error);
    had_old = true;
  }
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) {
    std::error_code ec2;
    if (had_old) fs::rename(old_dir, final_dir, ec2);
    return fail_clean(io_error(final_dir, ec.value(), "rename into").error);
  }
  if (auto r = sync_dir(dir); !r) return Unexpected{r.error()};
  if (had_old) fs::remove_all(old_dir, ec);

  // Keep the newest `keep`; clear leftovers of interrupted saves. Failures here lose nothing.
  const int64_t k = std::max<int64_t>(keep, 1);
  auto all = complete_checkpoints(dir);
  for (size_t i = 0; i + size_t(k) < all.size(); ++i)
    if (all[i].second != final_dir) fs::remove_all(all[i].second, ec);
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("step-", 0) == 0 && name.size() > 4 &&
        (name.ends_with(".tmp") || name.ends_with(".old")) && it->path() != tmp_dir) {
      std::error_code ec3;
      fs::remove_all(it->path(), ec3);
    }
  }
  return final_dir;
}

Expected<TrainState> load_checkpoint(const fs::path& checkpoint, const std::vector<Param*>& params, AdamW& optimizer) {
  const fs::path json_path = checkpoint / STATE_FILE;
  const fs::path st_path = checkpoint / TENSOR_FILE;
  std::error_code ec;
  if (!fs::is_directory(checkpoint, ec))
    return make_error(ErrorCode::not_found, checkpoint.string() + ": no such checkpoint folder");
  if (!fs::is_regular_file(json_path, ec) || !fs::is_regular_file(st_path, ec))
    return make_error(ErrorCode::format, checkpoint.string() + ": not a complete checkpoint (state.json and "
                                                              "state.safetensors expected)");
  std::string text;
  {
    FILE* f = std::fopen(json_path.c_str(), "rb");
    if (!f) return io_error(json_path, errno, "open");
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    const bool err = std::ferror(f);
    std::fclose(f);
    if (err) return io_error(json_path, EIO, "read");
  }
  auto js = nlohmann::ordered_json::parse(text, nullptr, false);
  if (js.is_discarded() || !js.is_object())
    return make_error(ErrorCode::format, json_path.string() + ": not a JSON object");
  TrainState st;
  int64_t optimizer_steps = 0;
  try {
    if (js.value("format", "") != "hearth-checkpoint" || js.value("version", 0) != CHECKPOINT_VERSION)
      return make_error(ErrorCode::format, json_path.string() + ": not a version " +
                                               std::to_string(CHECKPOINT_VERSION) + " Hearth checkpoint");
    st.step = js.at("step").get<int64_t>();
    optimizer_steps = js.at("optimizer_steps").get<int64_t>();
    st.tokens_seen = js.at("tokens_seen").get<int64_t>();
    st.elapsed_s = json_number(js, "elapsed_s");
    st.energy_j = json_number(js, "energy_j");
    st.data.epoch = js.at("data").at("epoch").get<int64_t>();
    st.data.index = js.at("data").at("index").get<int64_t>();
    st.dropout_counter = js.at("dropout_counter").get<uint64_t>();
    st.best_val_loss = json_number(js, "best_val_loss");
    st.config_json = config_text(js.at("config"));
    if (js.at("config_hash").get<std::string>() != fnv1a_hex(st.config_json))
      return make_error(ErrorCode::format, json_path.string() + ": the stored config does not match its hash",
                        "the file was edited or damaged; resume from another checkpoint");
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::format, json_path.string() + ": missing or mistyped field (" + e.what() + ")");
  }

  HEARTH_TRY(auto file, SafetensorsFile::open(st_path));
  auto& m = optimizer.m();
  auto& v = optimizer.v();
  if (m.size() != params.size() || v.size() != params.size())
    return make_error(ErrorCode::invalid_argument, "load_checkpoint: the optimizer was not made from these params");
  // Check everything first.
  std::vector<std::array<const SafetensorsTensor*, 3>> found(params.size());
  std::set<std::string> expected;
  for (size_t i = 0; i < params.size(); ++i) {
    const Param& p = *params[i];
    const std::string names[3] = {p.name, "optim.m." + p.name, "optim.v." + p.name};
    for (int k = 0; k < 3; ++k) {
      expected.insert(names[k]);
      const SafetensorsTensor* t = file.find(names[k]);
      if (!t)
        return make_error(ErrorCode::invalid_argument,
                          checkpoint.string() + ": no tensor '" + names[k] + "' in the checkpoint",
                          "the checkpoint was written for a different model or method (LoRA targets, rank)");
      if (t->shape != p.shape)
        return make_error(ErrorCode::invalid_argument,
                          checkpoint.string() + ": tensor '" + names[k] + "' has shape " + shape_text(t->shape) +
                              " in the checkpoint but " + shape_text(p.shape) + " in the model",
                          "the checkpoint was written for a different model shape or LoRA rank");
      if (t->type != GgmlType::F32)
        return make_error(ErrorCode::format, checkpoint.string() + ": tensor '" + names[k] + "' is not F32");
      if (t->nbytes() != uint64_t(p.numel()) * sizeof(float) || p.value.size() != size_t(p.numel()) ||
          m[i].size() != size_t(p.numel()) || v[i].size() != size_t(p.numel()))
        return make_error(ErrorCode::invalid_argument, checkpoint.string() + ": size mismatch for '" + names[k] + "'");
      found[i][size_t(k)] = t;
    }
  }
  for (const auto& t : file.tensors())
    if (!expected.count(t.name))
      return make_error(ErrorCode::invalid_argument,
                        checkpoint.string() + ": the checkpoint has tensor '" + t.name + "' that the model does not",
                        "the checkpoint was written for a different model or method (LoRA targets)");
  for (size_t i = 0; i < params.size(); ++i) {
    std::memcpy(params[i]->value.data(), found[i][0]->data, found[i][0]->nbytes());
    std::memcpy(m[i].data(), found[i][1]->data, found[i][1]->nbytes());
    std::memcpy(v[i].data(), found[i][2]->data, found[i][2]->nbytes());
  }
  optimizer.set_steps_taken(optimizer_steps);
  return st;
}

std::optional<fs::path> latest_checkpoint(const fs::path& dir) {
  auto all = complete_checkpoints(dir);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

Expected<void> check_resume_config(const std::string& saved_config_json, const std::string& current_config_json) {
  auto a = nlohmann::json::parse(saved_config_json, nullptr, false);
  auto b = nlohmann::json::parse(current_config_json, nullptr, false);
  if (a.is_discarded() || !a.is_object())
    return make_error(ErrorCode::format, "the checkpoint's stored config is not a JSON object");
  if (b.is_discarded() || !b.is_object())
    return make_error(ErrorCode::format, "the run's config is not a JSON object");
  static const std::set<std::string> free_keys = {"name", "training.threads", "training.log_every"};
  static const std::set<std::string> free_sections = {"eval", "checkpoint", "output"};
  std::set<std::string> keys;
  auto collect = [&](const nlohmann::json& j) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_object())
        for (auto jt = it.value().begin(); jt != it.value().end(); ++jt) keys.insert(it.key() + "." + jt.key());
      else
        keys.insert(it.key());
    }
  };
  collect(a);
  collect(b);
  for (const auto& key : keys) {
    const auto dot = key.find('.');
    if (free_keys.count(key) || (dot != std::string::npos && free_sections.count(key.substr(0, dot)))) continue;
    const nlohmann::json::json_pointer ptr("/" + (dot == std::string::npos ? key : key.substr(0, dot) + "/" + key.substr(dot + 1)));
    const bool in_a = a.contains(ptr), in_b = b.contains(ptr);
    const std::string va = in_a ? a.at(ptr).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : "(absent)";
    const std::string vb = in_b ? b.at(ptr).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : "(absent)";
    if (va != vb)
      return make_error(ErrorCode::invalid_argument,
                        "cannot resume: " + key + " was " + va + " in the checkpoint's run and is " + vb + " now",
                        "resume with the run's original configuration (or start a new run)");
  }
  return {};
}

}  // namespace hearth::train
