/* engine/cuda/kernels-elementwise.cu compiled as C++ against the CPU emulation in this folder (cuda_runtime_api.h). */
#include "../../../engine/cuda/kernels-elementwise.cu"
