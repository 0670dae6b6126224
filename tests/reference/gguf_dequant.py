#!/usr/bin/python3
"""Reference GGUF reader and dequantizer in numpy, written from the GGUF specification (ggml docs/gguf.md)
and ggml's block layouts (ggml-common.h), independently of Hearth's C++ code.

Usage:
  gguf_dequant.py FILE.gguf --info            print version, metadata summary and tensor list
  gguf_dequant.py FILE.gguf --out DIR         write DIR/manifest.txt and DIR/<i>.f32 (raw little-endian
                                              float32, the tensor's dequantized values in file order)

Non-obvious choice: every block type is decoded with whole-array numpy operations in float32, in the same
order of operations the ggml reference uses (d * q, then - m), so for most types the result must agree
with a C++ dequantizer bit for bit, not just within a tolerance.
"""
import os
import struct
import sys

import numpy as np

QK_K = 256

# type id -> (name, block size, bytes per block)
TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    30: ("BF16", 1, 2),
}

SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
              12: "<d"}


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, n):
        if self.p + n > len(self.d):
            raise ValueError(f"truncated at offset {self.p}: need {n} bytes")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def scalar(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.scalar("<Q")
        return bytes(self.take(n)).decode("utf-8", errors="surrogateescape")

    def value(self, vtype):
        if vtype in SCALAR_FMT:
            return self.scalar(SCALAR_FMT[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype = self.scalar("<I")
            n = self.scalar("<Q")
            return [self.value(etype) for _ in range(n)]
        raise ValueError(f"unknown value type {vtype} at offset {self.p - 4}")


def parse(path):
    data = memoryview(open(path, "rb").read())
    r = Reader(data)
    if bytes(r.take(4)) != b"GGUF":
        raise ValueError("not a GGUF file")
    version = r.scalar("<I")
    if version not in (2, 3):
        raise ValueError(f"unsupported version {version}")
    n_tensors = r.scalar("<Q")
    n_kv = r.scalar("<Q")
    kv = {}
    for _ in range(n_kv):
        key = r.string()
        kv[key] = r.value(r.scalar("<I"))
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.scalar("<I")
        shape = [r.scalar("<Q") for _ in range(n_dims)]
        ttype = r.scalar("<I")
        offset = r.scalar("<Q")
        tensors.append((name, shape, ttype, offset))
    align = kv.get("general.alignment", 32)
    data_start = (r.p + align - 1) // align * align
    return version, kv, tensors, data, data_start


# ---- block decoders: each takes a uint8 array of shape (n_blocks, block_bytes) -> float32 (n_blocks, bs)

def f16(b):  # (n, 2k) uint8 -> (n, k) float32
    return np.ascontiguousarray(b).view("<f2").astype(np.float32)


def deq_q4_0(b):
    d = f16(b[:, 0:2])
    qs = b[:, 2:18]
    q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.int32) - 8
    return q.astype(np.float32) * d


def deq_q4_1(b):
    d, m = f16(b[:, 0:2]), f16(b[:, 2:4])
    qs = b[:, 4:20]
    q = np.concatenate([qs & 0xF, qs >> 4], axis=1)
    return q.astype(np.float32) * d + m


def q5_quants(qh_bytes, qs):
    qh = np.ascontiguousarray(qh_bytes).view("<u4").astype(np.uint64)  # (n, 1)
    bits = ((qh >> np.arange(32, dtype=np.uint64)) & 1).astype(np.uint8)  # bit j -> element j
    return np.concatenate([qs & 0xF, qs >> 4], axis=1) | (bits << 4)


def deq_q5_0(b):
    d = f16(b[:, 0:2])
    q = q5_quants(b[:, 2:6], b[:, 6:22]).astype(np.int32) - 16
    return q.astype(np.float32) * d


def deq_q5_1(b):
    d, m = f16(b[:, 0:2]), f16(b[:, 2:4])
    q = q5_quants(b[:, 4:8], b[:, 8:24])
    return q.astype(np.float32) * d + m


def deq_q8_0(b):
    d = f16(b[:, 0:2])
    q = b[:, 2:34].view(np.int8)
    return q.astype(np.float32) * d


def deq_q8_1(b):
    d = f16(b[:, 0:2])  # b[:, 2:4] holds d * sum(qs), not needed to decode
    q = b[:, 4:36].view(np.int8)
    return q.astype(np.float32) * d


def k_scale_min(s):
    """The 12-byte packed 6-bit scales and mins of Q4_K/Q5_K -> (n, 8) scales, (n, 8) mins."""
    s = s.astype(np.uint8)
    sc = np.empty((s.shape[0], 8), np.uint8)
    mn = np.empty((s.shape[0], 8), np.uint8)
    sc[:, 0:4] = s[:, 0:4] & 63
    mn[:, 0:4] = s[:, 4:8] & 63
    sc[:, 4:8] = (s[:, 8:12] & 0xF) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:8] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc, mn


def deq_q4_k(b):
    n = b.shape[0]
    d, dmin = f16(b[:, 0:2]), f16(b[:, 2:4])
    sc, mn = k_scale_min(b[:, 4:16])
    qs = b[:, 16:144].reshape(n, 4, 32)  # 4 chunks of 32 bytes, each chunk = 2 sub-blocks of 32
    q = np.stack([qs & 0xF, qs >> 4], axis=2).reshape(n, 8, 32)  # sub-block 2c: low, 2c+1: high
    d1 = d * sc.astype(np.float32)   # (n, 8)
    m1 = dmin * mn.astype(np.float32)
    return (d1[:, :, None] * q.astype(np.float32) - m1[:, :, None]).reshape(n, 256)


def deq_q5_k(b):
    n = b.shape[0]
    d, dmin = f16(b[:, 0:2]), f16(b[:, 2:4])
    sc, mn = k_scale_min(b[:, 4:16])
    qh = b[:, 16:48]                          # (n, 32): bit i of qh[l] is the high bit of sub-block i
    qs = b[:, 48:176].reshape(n, 4, 32)
    lo = np.stack([qs & 0xF, qs >> 4], axis=2).reshape(n, 8, 32)
    hi = np.stack([(qh >> i) & 1 for i in range(8)], axis=1)  # (n, 8, 32)
    q = lo | (hi << 4)
    d1 = d * sc.astype(np.float32)
    m1 = dmin * mn.astype(np.float32)
    return (d1[:, :, None] * q.astype(np.float32) - m1[:, :, None]).reshape(n, 256)


def deq_q6_k(b):
    n = b.shape[0]
    ql = b[:, 0:128].reshape(n, 2, 64)
    qh = b[:, 128:192].reshape(n, 2, 32)
    sc = b[:, 192:208].view(np.int8).reshape(n, 16)
    d = f16(b[:, 208:210])
    # Within each half of 128 values: 4 groups of 32
    lo = np.stack([ql[:, :, 0:32] & 0xF, ql[:, :, 32:64] & 0xF, ql[:, :, 0:32] >> 4, ql[:, :, 32:64] >> 4],
                  axis=2)  # (n, 2, 4, 32)
    hi = np.stack([(qh >> (2 * g)) & 3 for g in range(4)], axis=2)  # (n, 2, 4, 32)
    q = ((lo | (hi << 4)).astype(np.int32) - 32).reshape(n, 256)
    # the scale index of element e (0..255) is e // 16
    s = np.repeat(sc.astype(np.float32), 16, axis=1)  # (n, 256)
    return (d * s) * q.astype(np.float32)


def deq_q2_k(b):
    n = b.shape[0]
    scales = b[:, 0:16]
    qs = b[:, 16:80].reshape(n, 2, 32)
    d, dmin = f16(b[:, 80:82]), f16(b[:, 82:84])
    # half h, shift s (0..3), 32 values -> element index 128h + 32s + l; sub-block of 16 = 8h + 2s + l//16
    q = np.stack([(qs >> (2 * s)) & 3 for s in range(4)], axis=2).reshape(n, 256)
    dl = np.repeat(d * (scales & 0xF).astype(np.float32), 16, axis=1)
    ml = np.repeat(dmin * (scales >> 4).astype(np.float32), 16, axis=1)
    return dl * q.astype(np.float32) - ml


def deq_q3_k(b):
    n = b.shape[0]
    hmask = b[:, 0:32]
    qs = b[:, 32:96].reshape(n, 2, 32)
    s = b[:, 96:108]
    d = f16(b[:, 108:110])
    # 16 six-bit scales: low 4 bits from bytes 0..7 (low nibble for 0..7, high nibble for 8..15),
    # high 2 bits from bytes 8..11 (byte 8 + i%4, bits 2*(i//4)).
    low = np.concatenate([s[:, 0:8] & 0xF, s[:, 0:8] >> 4], axis=1)
    high = np.concatenate([(s[:, 8:12] >> (2 * k)) & 3 for k in range(4)], axis=1)
    sc = (low | (high << 4)).astype(np.int32) - 32  # (n, 16)
    q = np.stack([(qs >> (2 * j)) & 3 for j in range(4)], axis=2).reshape(n, 8, 32)  # group g = 4h + j
    hbit = np.stack([(hmask >> g) & 1 for g in range(8)], axis=1)  # (n, 8, 32)
    qv = q.astype(np.int32) - np.where(hbit != 0, 0, 4)
    dl = np.repeat(d * sc.astype(np.float32), 16, axis=1)
    return dl * qv.reshape(n, 256).astype(np.float32)


def deq_q8_k(b):
    d = np.ascontiguousarray(b[:, 0:4]).view("<f4")
    q = b[:, 4:260].view(np.int8)
    return d * q.astype(np.float32)


BLOCK_DECODERS = {2: deq_q4_0, 3: deq_q4_1, 6: deq_q5_0, 7: deq_q5_1, 8: deq_q8_0, 9: deq_q8_1,
                  10: deq_q2_k, 11: deq_q3_k, 12: deq_q4_k, 13: deq_q5_k, 14: deq_q6_k, 15: deq_q8_k}


def dequantize(raw, ttype, n):
    name, bs, bb = TYPES[ttype]
    raw = np.frombuffer(raw, dtype=np.uint8)
    if ttype == 0:
        return raw.view("<f4").astype(np.float32)
    if ttype == 1:
        return raw.view("<f2").astype(np.float32)
    if ttype == 30:
        return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
    if ttype == 28:
        return raw.view("<f8").astype(np.float32)
    if ttype in (24, 25, 26, 27):
        return raw.view({24: "<i1", 25: "<i2", 26: "<i4", 27: "<i8"}[ttype]).astype(np.float32)
    blocks = raw.reshape(n // bs, bb)
    return BLOCK_DECODERS[ttype](blocks).astype(np.float32).reshape(n)


def summarize(v):
    if isinstance(v, list):
        head = ", ".join(repr(x) for x in v[:3])
        return f"[{len(v)} items: {head}{', ...' if len(v) > 3 else ''}]"
    return repr(v)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, mode = sys.argv[1], sys.argv[2]
    version, kv, tensors, data, data_start = parse(path)
    if mode == "--info":
        print(f"version {version}, {len(kv)} keys, {len(tensors)} tensors, data at {data_start}")
        for k, v in kv.items():
            print(f"  {k} = {summarize(v)}")
        for name, shape, ttype, off in tensors:
            print(f"  tensor {name} {shape} {TYPES.get(ttype, ('?',))[0]} @{off}")
        return 0
    if mode != "--out" or len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[3]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "manifest.txt"), "w") as man:
        for i, (name, shape, ttype, off) in enumerate(tensors):
            n = int(np.prod(shape, dtype=np.int64))
            _, bs, bb = TYPES[ttype]
            nbytes = n // bs * bb
            start = data_start + off
            vals = dequantize(data[start:start + nbytes], ttype, n)
            vals.astype("<f4").tofile(os.path.join(out, f"{i}.f32"))
            man.write(f"{i} {n} {name}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
