/* Hearth's version string, recorded with every run. */
#pragma once

namespace hearth::app {
const char* version();
}
