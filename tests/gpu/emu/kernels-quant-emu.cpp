/* engine/cuda/kernels-quant.cu compiled as C++ against the CPU emulation in this folder (cuda_runtime_api.h). */
#include "../../../engine/cuda/kernels-quant.cu"
