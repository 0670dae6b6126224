/* Quantized dot-product kernels (see quant-dot.h). Not yet filled in: every type uses the F32 path. */
#include "quant-dot.h"

namespace hearth::cpu {

const QuantDot* quant_dot_for(GgmlType) { return nullptr; }

}  // namespace hearth::cpu
