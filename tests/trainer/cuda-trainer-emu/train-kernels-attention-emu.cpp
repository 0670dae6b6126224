/* trainer/cuda/train-kernels-attention.cu compiled as C++ against the CPU emulation of CUDA (tests/gpu/emu). */
#include "../../../trainer/cuda/train-kernels-attention.cu"
