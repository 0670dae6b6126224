/* The trainer/cuda kernels that trainer/src/device-attention.cpp enqueues, compiled as C++ against the CPU
 * emulation of CUDA in tests/gpu/emu, for trainer-test-cuda-train-attention-emulated (see
 * cuda-train-attention-emu.cmake beside this file). */
#include "../../trainer/cuda/train-kernels-optim.cu"
#include "../../trainer/cuda/train-kernels-attention.cu"
