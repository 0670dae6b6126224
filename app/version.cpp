/* Hearth's version, from the CMake project version. */
#include "hearth/app/version.h"

namespace hearth::app {
const char* version() { return HEARTH_VERSION; }
}
