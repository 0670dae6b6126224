/* write_file_atomic (file-write.h): temporary file, then rename. */
#include "file-write.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <system_error>

namespace hearth::detail {

Expected<void> write_file_atomic(const std::filesystem::path& path, const void* data, std::size_t size) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error(ErrorCode::io, tmp.string() + ": cannot create: " + std::strerror(errno));
    out.write(static_cast<const char*>(data), std::streamsize(size));
    out.close();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return make_error(ErrorCode::io, tmp.string() + ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return make_error(ErrorCode::io, path.string() + ": cannot rename into place: " + ec.message());
  return {};
}

}  // namespace hearth::detail
