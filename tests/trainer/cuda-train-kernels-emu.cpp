/* The .cu files of trainer/cuda compiled as C++ against the CPU emulation of CUDA in tests/gpu/emu, for
 * trainer-test-cuda-train-kernels-emulated (see cuda-train-emu.cmake beside this file). */
#include "../../trainer/cuda/train-kernels-optim.cu"
#include "../../trainer/cuda/train-kernels-loss.cu"
#include "../../trainer/cuda/train-kernels-backward.cu"
#include "../../trainer/cuda/train-kernels-misc.cu"
#include "../../trainer/cuda/train-kernels-attention.cu"
