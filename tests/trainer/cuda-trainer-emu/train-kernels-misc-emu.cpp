/* trainer/cuda/train-kernels-misc.cu compiled as C++ against the CPU emulation of CUDA (tests/gpu/emu). */
#include "../../../trainer/cuda/train-kernels-misc.cu"
