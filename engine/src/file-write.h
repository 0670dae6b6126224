/* Writing a whole file so that readers never see half of it: the bytes go to `<path>.tmp`, which is
 * renamed over `path` only once every byte is written. A failure (a full disk) removes the temporary
 * file and leaves any previous `path` as it was.
 */
#pragma once

#include <cstddef>
#include <filesystem>

#include "hearth/error.h"

namespace hearth::detail {

// Errors: io, naming the file (cannot create, write failed, cannot rename).
Expected<void> write_file_atomic(const std::filesystem::path& path, const void* data, std::size_t size);

}  // namespace hearth::detail
