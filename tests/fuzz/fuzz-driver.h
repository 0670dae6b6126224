/* Interface between a fuzz target and the stand-alone mutation driver (fuzz-driver.cpp).
 * A target may provide seeds of its own (small valid files built by the writers) by defining
 * hearth_fuzz_seeds(); the driver adds them to the files found in --seed-dir that match
 * hearth_fuzz_seed_suffix(). */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

// Seeds made in memory by the target (may be empty).
std::vector<std::vector<uint8_t>> hearth_fuzz_seeds();
// File name suffix of seed files to take from --seed-dir (recursively), e.g. ".gguf".
std::string hearth_fuzz_seed_suffix();
