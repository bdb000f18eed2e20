"""The per-sample generation loop, and the training path's GRU and loss, as a small C++ kernel, JIT-compiled
once and cached in the user cache dir.

Built with ``torch.utils.cpp_extension.load_inline`` at first use (never at install time: pip's isolated build
environment would fetch a CUDA build of torch). Without a compiler, :func:`load_kernel` returns None and the
caller uses the pure-PyTorch loop of :mod:`vcframe_wavernn.generate`, which computes the same thing.

One call runs ``n_steps`` steps for all folds. Everything that does not depend on the previous sample was
precomputed by the caller as whole-block matrix products; a step is then five small GEMMs (the recurrent
products, rnn2's input and the fc layers, through ATen/MKL into preallocated buffers) and fused loops for
the GRU gates, the residuals, the ReLUs and the sampler. Folds are split in contiguous groups over the
threads (plain ``std::thread``); groups never synchronise, so two cores give close to twice the speed.

``TRAINING_SOURCE`` adds what :mod:`vcframe_wavernn.fused` runs for training: a GRU layer over a whole
teacher-forced sequence, forward and backward (one product and one vectorised pass over the gates per step;
the products on AMX tiles in bfloat16 where the CPU and Linux allow it, else through at::mm), and the
cross-entropy over the mu-law classes. Without a compiler the PyTorch versions in that module run instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import torch

CPP_SOURCE = r"""
#include <torch/extension.h>
#include <thread>
#include <vector>
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VC_HAVE_AVX2 1
#endif

// exp with Cephes' polynomial (about 1 ulp), the same arithmetic in the scalar and the AVX2 version.
static inline float vc_exp(float x) {
  x = std::fmin(std::fmax(x, -87.0f), 88.0f);
  float n = std::floor(std::fma(x, 1.44269504088896341f, 0.5f));
  float r = std::fma(n, 2.12194440e-4f, std::fma(n, -0.693359375f, x));
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  float y = std::fma(p, r * r, r) + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(float));
  return y * scale;
}

#ifdef VC_HAVE_AVX2
static inline __m256 vc_exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), x));
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}
#endif

// In place over an array: mode 0 = exp, 1 = sigmoid, 2 = tanh.
static inline void vc_apply(float* v, int64_t count, int mode) {
  int64_t i = 0;
#ifdef VC_HAVE_AVX2
  const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
  for (; i + 8 <= count; i += 8) {
    __m256 x = _mm256_loadu_ps(v + i);
    __m256 y;
    if (mode == 0) y = vc_exp8(x);
    else if (mode == 1) y = _mm256_div_ps(one, _mm256_add_ps(one, vc_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    else {
      const __m256 e = vc_exp8(_mm256_mul_ps(x, _mm256_set1_ps(-2.0f)));
      y = _mm256_sub_ps(_mm256_div_ps(two, _mm256_add_ps(one, e)), one);
    }
    _mm256_storeu_ps(v + i, y);
  }
#endif
  for (; i < count; ++i) {
    float x = v[i];
    if (mode == 0) v[i] = vc_exp(x);
    else if (mode == 1) v[i] = 1.0f / (1.0f + vc_exp(-x));
    else v[i] = 2.0f / (1.0f + vc_exp(-2.0f * x)) - 1.0f;
  }
}

// C (M, N) = A (M, K) @ B (K, N), all row-major and contiguous. Register-blocked for small M (the folds of a
// thread): 4 rows x 16 columns of accumulators, B streamed once per 4 rows with its 16-column strip in L1.
// MKL is slow at these shapes (and oversubscribes inside our threads); this loop vectorises with -O3 -mavx2.
#ifdef VC_HAVE_AVX2
// MB rows x (8 NV) columns of C. MB * NV independent accumulator chains hide the FMA latency: with few rows
// (few folds per thread) the tile gets wider instead.
template <int MB, int NV>
static inline void gemm_tile(const float* __restrict A, int64_t K, const float* __restrict B, int64_t ldb,
                             float* __restrict C, int64_t N, int64_t n0) {
  __m256 acc[MB][NV];
  for (int r = 0; r < MB; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + k * ldb;
    __m256 bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
    for (int r = 0; r < MB; ++r) {
      const __m256 av = _mm256_broadcast_ss(A + r * K + k);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MB; ++r)
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(C + r * N + n0 + 8 * v, acc[r][v]);
}

#endif

// b is either a (K, N) matrix (then ATen's mm is used) or, packed by the caller, (N / P, K, P) panels of P
// columns (P = 64 or 16): each panel is contiguous, so the tiles stream it with the hardware prefetcher
// (rows of a plain (K, N) matrix lie N floats apart, a page or more, where prefetchers stop).
static void small_gemm(const torch::Tensor& a, const torch::Tensor& b, torch::Tensor& c) {
#ifdef VC_HAVE_AVX2
  if (b.dim() == 3) {
    const int64_t M = a.size(0), K = a.size(1), P = b.size(2), N = b.size(0) * P;
    const float* A = a.data_ptr<float>();
    const float* Bp = b.data_ptr<float>();
    float* C = c.data_ptr<float>();
    for (int64_t p = 0; p < N / P; ++p) {
      const float* B = Bp + p * K * P;
      const int64_t n0 = p * P;
      int64_t m0 = 0;
      for (; m0 + 4 <= M; m0 += 4)
        for (int64_t off = 0; off < P; off += 16)
          gemm_tile<4, 2>(A + m0 * K, K, B + off, P, C + m0 * N, N, n0 + off);
      const int64_t rest = M - m0;
      if (rest == 0) continue;
      const float* Ar = A + m0 * K;
      float* Cr = C + m0 * N;
      if (P == 64) {
        if (rest == 1) gemm_tile<1, 8>(Ar, K, B, P, Cr, N, n0);
        else if (rest == 2) {
          gemm_tile<2, 4>(Ar, K, B, P, Cr, N, n0);
          gemm_tile<2, 4>(Ar, K, B + 32, P, Cr, N, n0 + 32);
        } else {
          gemm_tile<3, 4>(Ar, K, B, P, Cr, N, n0);
          gemm_tile<3, 4>(Ar, K, B + 32, P, Cr, N, n0 + 32);
        }
      } else {
        if (rest == 1) gemm_tile<1, 2>(Ar, K, B, P, Cr, N, n0);
        else if (rest == 2) gemm_tile<2, 2>(Ar, K, B, P, Cr, N, n0);
        else gemm_tile<3, 2>(Ar, K, B, P, Cr, N, n0);
      }
    }
    return;
  }
#endif
  at::mm_out(c, a, b.dim() == 3 ? b.permute({1, 0, 2}).reshape({a.size(1), -1}) : b);
}

// Runs n_steps generation steps. Shapes (F folds, R rnn dims, H fc dims, C classes, K >= n_steps):
// pre_i (K,F,R) = I(mel, a1) + bias without the sample term; pre_g1 (K,F,3R) = W_ih1 pre_i + b_ih1;
// pre_a2 (K,F,3R) = W_ih2[:,R:] a2 + b_ih2; pre_a3 (K,F,H) = fc1 a3 part + bias; pre_a4 (K,F,H) likewise.
// noise (K,F,C) Exp(1) draws (ignored when argmax). State x (F), h1 (F,R), h2 (F,R) is updated in place.
void run_steps(torch::Tensor pre_i, torch::Tensor pre_g1, torch::Tensor pre_a2, torch::Tensor pre_a3,
               torch::Tensor pre_a4, torch::Tensor noise, bool argmax,
               torch::Tensor w_sample, torch::Tensor v_sample,
               torch::Tensor whh1_t, torch::Tensor bhh1, torch::Tensor wih2_t,
               torch::Tensor whh2_t, torch::Tensor bhh2,
               torch::Tensor fc1_t, torch::Tensor fc2_t, torch::Tensor fc3_t, torch::Tensor b3,
               torch::Tensor table, torch::Tensor x, torch::Tensor h1, torch::Tensor h2,
               torch::Tensor out, int64_t n_steps, int64_t groups) {
  auto columns = [](const torch::Tensor& t) { return t.dim() == 3 ? t.size(0) * t.size(2) : t.size(1); };
  const int64_t F = h1.size(0), R = h1.size(1), H = columns(fc1_t), C = columns(fc3_t);
  groups = std::max<int64_t>(1, std::min<int64_t>(groups, F));
  auto run_group = [&](int64_t g) {
    {
      const int64_t f0 = F * g / groups, f1 = F * (g + 1) / groups, nf = f1 - f0;
      if (nf <= 0) return;
      auto opts = h1.options();
      torch::Tensor h1v = h1.narrow(0, f0, nf), h2v = h2.narrow(0, f0, nf);
      torch::Tensor gh1 = torch::empty({nf, 3 * R}, opts), gi2 = torch::empty({nf, 3 * R}, opts);
      torch::Tensor gh2 = torch::empty({nf, 3 * R}, opts), x1 = torch::empty({nf, R}, opts);
      torch::Tensor x2 = torch::empty({nf, R}, opts), y1 = torch::empty({nf, H}, opts);
      torch::Tensor y2 = torch::empty({nf, H}, opts), logits = torch::empty({nf, C}, opts);
      torch::Tensor scores = torch::empty({C}, opts);
      float* px = x.data_ptr<float>() + f0;
      float* ph1 = h1v.data_ptr<float>();
      float* ph2 = h2v.data_ptr<float>();
      float* pgh1 = gh1.data_ptr<float>();
      float* pgi2 = gi2.data_ptr<float>();
      float* pgh2 = gh2.data_ptr<float>();
      float* px1 = x1.data_ptr<float>();
      float* px2 = x2.data_ptr<float>();
      float* py1 = y1.data_ptr<float>();
      float* py2 = y2.data_ptr<float>();
      float* plog = logits.data_ptr<float>();
      float* psc = scores.data_ptr<float>();
      const float* w0 = w_sample.data_ptr<float>();
      const float* v1 = v_sample.data_ptr<float>();
      const float* pbh1 = bhh1.data_ptr<float>();
      const float* pbh2 = bhh2.data_ptr<float>();
      const float* pb3 = b3.data_ptr<float>();
      const float* ptable = table.data_ptr<float>();
      for (int64_t k = 0; k < n_steps; ++k) {
        const float* pi = pre_i.data_ptr<float>() + (k * F + f0) * R;
        const float* g1 = pre_g1.data_ptr<float>() + (k * F + f0) * 3 * R;
        const float* a2 = pre_a2.data_ptr<float>() + (k * F + f0) * 3 * R;
        const float* a3 = pre_a3.data_ptr<float>() + (k * F + f0) * H;
        const float* a4 = pre_a4.data_ptr<float>() + (k * F + f0) * H;
        small_gemm(h1v, whh1_t, gh1);
        for (int64_t f = 0; f < nf; ++f) {
          const float xs = px[f];
          const float* gi = g1 + f * 3 * R;
          float* gh = pgh1 + f * 3 * R;  // becomes r | z | n in place
          float* h = ph1 + f * R;
          float* xo = px1 + f * R;
          const float* pif = pi + f * R;
          for (int64_t j = 0; j < 2 * R; ++j) gh[j] = (gh[j] + pbh1[j]) + (xs * v1[j] + gi[j]);
          vc_apply(gh, 2 * R, 1);
          for (int64_t j = 0; j < R; ++j)
            gh[2 * R + j] = (xs * v1[2 * R + j] + gi[2 * R + j]) + (gh[2 * R + j] + pbh1[2 * R + j]) * gh[j];
          vc_apply(gh + 2 * R, R, 2);
          for (int64_t j = 0; j < R; ++j) {
            const float n = gh[2 * R + j];
            const float hn = (h[j] - n) * gh[R + j] + n;
            h[j] = hn;
            xo[j] = (xs * w0[j] + pif[j]) + hn;
          }
        }
        small_gemm(x1, wih2_t, gi2);
        small_gemm(h2v, whh2_t, gh2);
        for (int64_t f = 0; f < nf; ++f) {
          const float* gi = pgi2 + f * 3 * R;
          const float* ga = a2 + f * 3 * R;
          float* gh = pgh2 + f * 3 * R;
          float* h = ph2 + f * R;
          const float* xi = px1 + f * R;
          float* xo = px2 + f * R;
          for (int64_t j = 0; j < 2 * R; ++j) gh[j] = (gh[j] + pbh2[j]) + (gi[j] + ga[j]);
          vc_apply(gh, 2 * R, 1);
          for (int64_t j = 0; j < R; ++j)
            gh[2 * R + j] = (gi[2 * R + j] + ga[2 * R + j]) + (gh[2 * R + j] + pbh2[2 * R + j]) * gh[j];
          vc_apply(gh + 2 * R, R, 2);
          for (int64_t j = 0; j < R; ++j) {
            const float n = gh[2 * R + j];
            const float hn = (h[j] - n) * gh[R + j] + n;
            h[j] = hn;
            xo[j] = xi[j] + hn;
          }
        }
        small_gemm(x2, fc1_t, y1);
        for (int64_t i = 0; i < nf * H; ++i) { float v = py1[i] + a3[i]; py1[i] = v > 0.0f ? v : 0.0f; }
        small_gemm(y1, fc2_t, y2);
        for (int64_t i = 0; i < nf * H; ++i) { float v = py2[i] + a4[i]; py2[i] = v > 0.0f ? v : 0.0f; }
        small_gemm(y2, fc3_t, logits);
        float* po = out.data_ptr<float>() + k * F + f0;
        for (int64_t f = 0; f < nf; ++f) {
          float* l = plog + f * C;
          float top = -INFINITY;
          for (int64_t c = 0; c < C; ++c) { l[c] += pb3[c]; top = l[c] > top ? l[c] : top; }
          for (int64_t c = 0; c < C; ++c) psc[c] = l[c] - top;
          vc_apply(psc, C, 0);
          if (!argmax) {
            const float* e = noise.data_ptr<float>() + (k * F + f0 + f) * C;
            for (int64_t c = 0; c < C; ++c) psc[c] = psc[c] / e[c];
          }
          int64_t best = 0;
          float best_score = psc[0];
          for (int64_t c = 1; c < C; ++c) if (psc[c] > best_score) { best_score = psc[c]; best = c; }
          px[f] = ptable[best];
          po[f] = px[f];
        }
      }
    }
  };
  // plain threads, no OpenMP: the groups never synchronise, and in an extension built without -fopenmp
  // at::parallel_for runs serially
  std::vector<std::thread> workers;
  for (int64_t g = 1; g < groups; ++g) workers.emplace_back(run_group, g);
  run_group(0);
  for (auto& worker : workers) worker.join();
}
"""


TRAINING_SOURCE = r"""
// ---- training (vcframe_wavernn.fused): a GRU layer over a whole teacher-forced sequence, cross-entropy -----
// Layouts are time-major, (S(+1), B, .), as nn.GRU's default: a step reads and writes one contiguous (B, .)
// block of every array (batch-first rows lie S rows apart, a page or more: one TLB miss per row per step).
// Gate order r, z, n (nn.GRU's). GI is the input projection's type (float, or
// bfloat16 under autocast), MM the recurrent products' operand type and that of what the steps keep (float
// or bfloat16); the state carried from step to step and every sum are float. bfloat16 is handled as raw
// 16-bit values, rounded to nearest even (c10's conversion for every finite value).

using vc_bf16 = uint16_t;
static inline float vc_to_float(float value) { return value; }
static inline float vc_to_float(vc_bf16 value) {
  uint32_t bits = static_cast<uint32_t>(value) << 16;
  float result;
  std::memcpy(&result, &bits, sizeof(float));
  return result;
}
template <typename T> static inline T vc_from_float(float value);
template <> inline float vc_from_float<float>(float value) { return value; }
template <> inline vc_bf16 vc_from_float<vc_bf16>(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(float));
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<vc_bf16>(bits >> 16);
}
template <typename T> static inline T* vc_data(const torch::Tensor& tensor) {
  return reinterpret_cast<T*>(tensor.data_ptr());
}
static inline float vc_sigmoid(float x) { return 1.0f / (1.0f + vc_exp(-x)); }
static inline float vc_tanh(float x) { return 2.0f / (1.0f + vc_exp(-2.0f * x)) - 1.0f; }

#ifdef VC_HAVE_AVX2
static inline __m256 vc_load8(const float* p) { return _mm256_loadu_ps(p); }
static inline __m256 vc_load8(const vc_bf16* p) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
}
static inline void vc_store8(float* p, __m256 value) { _mm256_storeu_ps(p, value); }
static inline void vc_store8(vc_bf16* p, __m256 value) {  // round to nearest even, as vc_from_float
  __m256i bits = _mm256_castps_si256(value);
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  bits = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7FFF))), 16);
  const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(bits), _mm256_extracti128_si256(bits, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
}
static inline __m256 vc_sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, vc_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
static inline __m256 vc_tanh8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 e = vc_exp8(_mm256_mul_ps(x, _mm256_set1_ps(-2.0f)));
  return _mm256_sub_ps(_mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(one, e)), one);
}
#endif

// AMX (Intel's tile unit, bfloat16 products into float32): the recurrent products of a step when the CPU has
// it. oneDNN (behind at::mm) lays the weight out for the tiles again on every call, which costs more than the
// product itself at a step's size (B rows); here the caller lays it out once per sequence. C (M, N) float =
// A (M, K) bfloat16 row-major with leading dimension lda, times B given as (K / 2, N, 2) pairs (the VNNI
// layout the tile instruction reads). Needs M % 16 == 0, K % 32 == 0, N % 32 == 0 (vc_amx_fits).
#if defined(__linux__) && defined(__x86_64__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define VC_HAVE_AMX 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

struct vc_tile_config {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Linux hands out the tile registers' state only to a process that asks (once; oneDNN asks the same way).
static bool vc_amx_permitted() {
  static const bool permitted = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
  return permitted;
}

__attribute__((target("amx-tile,amx-bf16"))) static void vc_amx_gemm(const vc_bf16* A, int64_t M, int64_t K,
                                                                      int64_t lda, const vc_bf16* Bp, int64_t N,
                                                                      float* C, int64_t ldc) {
  vc_tile_config config;
  for (int tile = 0; tile < 8; ++tile) {  // C: 16 x 16 float; A: 16 x 32 bfloat16; B: 16 pairs x 16 columns
    config.rows[tile] = 16;
    config.colsb[tile] = 64;
  }
  _tile_loadconfig(&config);
  const int64_t a_stride = lda * 2, b_stride = N * 4, c_stride = ldc * 4;
  int64_t m = 0;
  for (; m + 32 <= M; m += 32) {
    for (int64_t n = 0; n < N; n += 32) {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int64_t k = 0; k < K; k += 32) {
        _tile_loadd(4, A + m * lda + k, a_stride);
        _tile_loadd(5, A + (m + 16) * lda + k, a_stride);
        _tile_loadd(6, Bp + (k / 2) * N * 2 + n * 2, b_stride);
        _tile_loadd(7, Bp + (k / 2) * N * 2 + (n + 16) * 2, b_stride);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, C + m * ldc + n, c_stride);
      _tile_stored(1, C + m * ldc + n + 16, c_stride);
      _tile_stored(2, C + (m + 16) * ldc + n, c_stride);
      _tile_stored(3, C + (m + 16) * ldc + n + 16, c_stride);
    }
  }
  if (m < M) {  // 16 rows left
    for (int64_t n = 0; n < N; n += 32) {
      _tile_zero(0);
      _tile_zero(1);
      for (int64_t k = 0; k < K; k += 32) {
        _tile_loadd(4, A + m * lda + k, a_stride);
        _tile_loadd(6, Bp + (k / 2) * N * 2 + n * 2, b_stride);
        _tile_loadd(7, Bp + (k / 2) * N * 2 + (n + 16) * 2, b_stride);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
      }
      _tile_stored(0, C + m * ldc + n, c_stride);
      _tile_stored(1, C + m * ldc + n + 16, c_stride);
    }
  }
  _tile_release();
}
#endif

static bool vc_amx_fits(int64_t M, int64_t K, int64_t N) { return M % 16 == 0 && K % 32 == 0 && N % 32 == 0; }

// True when this build can use AMX and Linux grants it (the caller checks the CPU: torch.cpu).
bool amx_available() {
#ifdef VC_HAVE_AMX
  return vc_amx_permitted();
#else
  return false;
#endif
}

// C = A B for one step: AMX into float when `packed` (B's VNNI layout) is given, else at::mm into `product`.
template <typename PT>
static inline void vc_step_product(torch::Tensor& product, const torch::Tensor& a, const torch::Tensor& b,
                                   const torch::Tensor& packed) {
#ifdef VC_HAVE_AMX
  if (std::is_same<PT, float>::value && packed.defined() && packed.numel() > 0) {
    vc_amx_gemm(vc_data<vc_bf16>(a), a.size(0), a.size(1), a.stride(0), vc_data<vc_bf16>(packed), product.size(1),
                vc_data<float>(product), product.size(1));
    return;
  }
#endif
  at::mm_out(product, a, b);
}

// Forward of the whole sequence. projection (S, B, 3H): W_ih x of every step (no bias); h0 (B, H) float;
// weight_t (H, 3H) = W_hh^T; bias_rz (2H) = b_ih + b_hh of r and z; bias_in, bias_hn (H): the n gate's.
// Fills states (S + 1, B, H): h0 and every step's state; saved (S, B, 4H): r | z | n | W_hn h + b_hn;
// output (S, B, H).
template <typename GI, typename MM, typename PT>
static void gru_forward_impl(const torch::Tensor& projection, const torch::Tensor& h0, torch::Tensor& states,
                             const torch::Tensor& weight_t, const torch::Tensor& packed, const torch::Tensor& bias_rz,
                             const torch::Tensor& bias_in, const torch::Tensor& bias_hn, torch::Tensor& saved,
                             torch::Tensor& output) {
  const int64_t S = projection.size(0), B = projection.size(1), H = h0.size(1);
  torch::Tensor product =
      torch::empty({B, 3 * H}, h0.options().dtype(std::is_same<PT, float>::value ? at::kFloat : at::kBFloat16));
  torch::Tensor current = h0.clone();
  const GI* gi_all = vc_data<GI>(projection);
  float* __restrict h = vc_data<float>(current);
  MM* st_all = vc_data<MM>(states);
  const float* __restrict brz = vc_data<float>(bias_rz);
  const float* __restrict bin = vc_data<float>(bias_in);
  const float* __restrict bhn = vc_data<float>(bias_hn);
  MM* sv_all = vc_data<MM>(saved);
  GI* out_all = vc_data<GI>(output);
  const PT* gh_all = vc_data<PT>(product);
  for (int64_t i = 0; i < B * H; ++i) st_all[i] = vc_from_float<MM>(h[i]);
  for (int64_t t = 0; t < S; ++t) {
    vc_step_product<PT>(product, states[t], weight_t, packed);
    for (int64_t b = 0; b < B; ++b) {
      const GI* __restrict gi = gi_all + (t * B + b) * 3 * H;
      const PT* __restrict gh = gh_all + b * 3 * H;
      MM* __restrict sv = sv_all + (t * B + b) * 4 * H;
      float* __restrict hb = h + b * H;
      MM* __restrict st = st_all + ((t + 1) * B + b) * H;
      GI* __restrict out = out_all + (t * B + b) * H;
      int64_t j = 0;
#ifdef VC_HAVE_AVX2
      for (; j + 8 <= H; j += 8) {  // the scalar loop below, 8 columns at a time
        const __m256 r = vc_sigmoid8(
            _mm256_add_ps(_mm256_add_ps(vc_load8(gi + j), vc_load8(gh + j)), _mm256_loadu_ps(brz + j)));
        const __m256 z = vc_sigmoid8(
            _mm256_add_ps(_mm256_add_ps(vc_load8(gi + H + j), vc_load8(gh + H + j)), _mm256_loadu_ps(brz + H + j)));
        const __m256 ghn = _mm256_add_ps(vc_load8(gh + 2 * H + j), _mm256_loadu_ps(bhn + j));
        const __m256 n =
            vc_tanh8(_mm256_fmadd_ps(r, ghn, _mm256_add_ps(vc_load8(gi + 2 * H + j), _mm256_loadu_ps(bin + j))));
        const __m256 next = _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(hb + j), n), z, n);
        vc_store8(sv + j, r);
        vc_store8(sv + H + j, z);
        vc_store8(sv + 2 * H + j, n);
        vc_store8(sv + 3 * H + j, ghn);
        _mm256_storeu_ps(hb + j, next);
        vc_store8(st + j, next);
        vc_store8(out + j, next);
      }
#endif
      for (; j < H; ++j) {
        const float r = vc_sigmoid((vc_to_float(gi[j]) + vc_to_float(gh[j])) + brz[j]);
        const float z = vc_sigmoid((vc_to_float(gi[H + j]) + vc_to_float(gh[H + j])) + brz[H + j]);
        const float ghn = vc_to_float(gh[2 * H + j]) + bhn[j];
        const float n = vc_tanh(r * ghn + (vc_to_float(gi[2 * H + j]) + bin[j]));
        const float next = (hb[j] - n) * z + n;
        sv[j] = vc_from_float<MM>(r);
        sv[H + j] = vc_from_float<MM>(z);
        sv[2 * H + j] = vc_from_float<MM>(n);
        sv[3 * H + j] = vc_from_float<MM>(ghn);
        hb[j] = next;
        st[j] = vc_from_float<MM>(next);
        out[j] = vc_from_float<GI>(next);
      }
    }
  }
}

// packed: W_hh^T in the VNNI layout (H / 2, 3H, 2) for AMX products (bfloat16 only; empty: at::mm).
void gru_forward(torch::Tensor projection, torch::Tensor h0, torch::Tensor states, torch::Tensor weight_t,
                 torch::Tensor packed, torch::Tensor bias_rz, torch::Tensor bias_in, torch::Tensor bias_hn,
                 torch::Tensor saved, torch::Tensor output) {
  const bool gi16 = projection.scalar_type() == at::kBFloat16, mm16 = weight_t.scalar_type() == at::kBFloat16;
  const bool amx = mm16 && packed.numel() > 0 && amx_available() &&
                   vc_amx_fits(projection.size(1), h0.size(1), 3 * h0.size(1));
#define VC_FORWARD(GI, MM, PT) \
  gru_forward_impl<GI, MM, PT>(projection, h0, states, weight_t, packed, bias_rz, bias_in, bias_hn, saved, output)
  if (gi16 && amx) VC_FORWARD(vc_bf16, vc_bf16, float);
  else if (gi16 && mm16) VC_FORWARD(vc_bf16, vc_bf16, vc_bf16);
  else if (gi16) VC_FORWARD(vc_bf16, float, float);
  else if (amx) VC_FORWARD(float, vc_bf16, float);
  else if (mm16) VC_FORWARD(float, vc_bf16, vc_bf16);
  else VC_FORWARD(float, float, float);
#undef VC_FORWARD
}

// Backward: the steps in reverse. grad_output (S, B, H); weight (3H, H) = W_hh. Fills grad_projection
// (S, B, 3H) and grad_recurrent (S, B, 3H) (the gradients of W_ih x and of W_hh h + b_hh: the caller
// multiplies the latter with states[:-1] for W_hh's gradient); accumulates into grad_bias_hh (3H) and
// grad_bias_in (H, the n gate's input bias; r and z share grad_bias_hh's); carry: the incoming gradient of
// the last state (zeros), on return that of h0.
template <typename GI, typename MM, typename PT>
static void gru_backward_impl(const torch::Tensor& grad_output, const torch::Tensor& states,
                              const torch::Tensor& saved, const torch::Tensor& weight, const torch::Tensor& packed,
                              torch::Tensor& grad_projection, torch::Tensor& grad_recurrent,
                              torch::Tensor& grad_bias_hh, torch::Tensor& grad_bias_in, torch::Tensor& carry) {
  const int64_t S = saved.size(0), B = saved.size(1), H = carry.size(1);
  torch::Tensor product =
      torch::empty({B, H}, carry.options().dtype(std::is_same<PT, float>::value ? at::kFloat : at::kBFloat16));
  torch::Tensor direct = torch::empty({B, H}, carry.options());
  const GI* go_all = vc_data<GI>(grad_output);
  const MM* st_all = vc_data<MM>(states);
  const MM* sv_all = vc_data<MM>(saved);
  GI* ggi_all = vc_data<GI>(grad_projection);
  MM* grec_all = vc_data<MM>(grad_recurrent);
  float* __restrict gb_r = vc_data<float>(grad_bias_hh);
  float* __restrict gb_z = gb_r + H;
  float* __restrict gb_n = gb_r + 2 * H;
  float* __restrict gb_in = vc_data<float>(grad_bias_in);
  float* __restrict pc = vc_data<float>(carry);
  float* __restrict pd = vc_data<float>(direct);
  const PT* __restrict pp = vc_data<PT>(product);
  for (int64_t t = S - 1; t >= 0; --t) {
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = t * B + b;
      const GI* __restrict go = go_all + row * H;
      const MM* __restrict reset = sv_all + row * 4 * H;
      const MM* __restrict update = reset + H;
      const MM* __restrict candidate = reset + 2 * H;
      const MM* __restrict recurrent_n = reset + 3 * H;
      const MM* __restrict hp = st_all + row * H;
      GI* __restrict ggi_r = ggi_all + row * 3 * H;
      GI* __restrict ggi_z = ggi_r + H;
      GI* __restrict ggi_n = ggi_r + 2 * H;
      MM* __restrict grec_r = grec_all + row * 3 * H;
      MM* __restrict grec_z = grec_r + H;
      MM* __restrict grec_n = grec_r + 2 * H;
      const float* __restrict c = pc + b * H;
      float* __restrict d = pd + b * H;
      int64_t j = 0;
#ifdef VC_HAVE_AVX2
      const __m256 one = _mm256_set1_ps(1.0f);
      for (; j + 8 <= H; j += 8) {  // the scalar loop below, 8 columns at a time
        const __m256 dh = _mm256_add_ps(vc_load8(go + j), _mm256_loadu_ps(c + j));
        const __m256 r = vc_load8(reset + j), z = vc_load8(update + j), n = vc_load8(candidate + j);
        const __m256 dn = _mm256_mul_ps(dh, _mm256_mul_ps(_mm256_sub_ps(one, z), _mm256_fnmadd_ps(n, n, one)));
        const __m256 dr = _mm256_mul_ps(_mm256_mul_ps(dn, vc_load8(recurrent_n + j)), _mm256_fnmadd_ps(r, r, r));
        const __m256 dz =
            _mm256_mul_ps(_mm256_mul_ps(dh, _mm256_sub_ps(vc_load8(hp + j), n)), _mm256_fnmadd_ps(z, z, z));
        const __m256 dhn = _mm256_mul_ps(dn, r);
        vc_store8(grec_r + j, dr);
        vc_store8(grec_z + j, dz);
        vc_store8(grec_n + j, dhn);
        vc_store8(ggi_r + j, dr);
        vc_store8(ggi_z + j, dz);
        vc_store8(ggi_n + j, dn);
        _mm256_storeu_ps(gb_r + j, _mm256_add_ps(_mm256_loadu_ps(gb_r + j), dr));
        _mm256_storeu_ps(gb_z + j, _mm256_add_ps(_mm256_loadu_ps(gb_z + j), dz));
        _mm256_storeu_ps(gb_n + j, _mm256_add_ps(_mm256_loadu_ps(gb_n + j), dhn));
        _mm256_storeu_ps(gb_in + j, _mm256_add_ps(_mm256_loadu_ps(gb_in + j), dn));
        _mm256_storeu_ps(d + j, _mm256_mul_ps(dh, z));
      }
#endif
      for (; j < H; ++j) {
        const float dh = vc_to_float(go[j]) + c[j];
        const float r = vc_to_float(reset[j]), z = vc_to_float(update[j]), n = vc_to_float(candidate[j]);
        const float dn = dh * ((1.0f - z) * (1.0f - n * n));
        const float dr = dn * vc_to_float(recurrent_n[j]) * (r - r * r);
        const float dz = dh * (vc_to_float(hp[j]) - n) * (z - z * z);
        const float dhn = dn * r;
        grec_r[j] = vc_from_float<MM>(dr);
        grec_z[j] = vc_from_float<MM>(dz);
        grec_n[j] = vc_from_float<MM>(dhn);
        ggi_r[j] = vc_from_float<GI>(dr);
        ggi_z[j] = vc_from_float<GI>(dz);
        ggi_n[j] = vc_from_float<GI>(dn);
        gb_r[j] += dr;
        gb_z[j] += dz;
        gb_n[j] += dhn;
        gb_in[j] += dn;
        d[j] = dh * z;
      }
    }
    vc_step_product<PT>(product, grad_recurrent[t], weight, packed);
    for (int64_t i = 0; i < B * H; ++i) pc[i] = vc_to_float(pp[i]) + pd[i];
  }
}

// packed: W_hh in the VNNI layout (3H / 2, H, 2) for AMX products (bfloat16 only; empty: at::mm).
void gru_backward(torch::Tensor grad_output, torch::Tensor states, torch::Tensor saved, torch::Tensor weight,
                  torch::Tensor packed, torch::Tensor grad_projection, torch::Tensor grad_recurrent,
                  torch::Tensor grad_bias_hh, torch::Tensor grad_bias_in, torch::Tensor carry) {
  const bool gi16 = grad_output.scalar_type() == at::kBFloat16, mm16 = weight.scalar_type() == at::kBFloat16;
  const bool amx = mm16 && packed.numel() > 0 && amx_available() &&
                   vc_amx_fits(saved.size(1), 3 * carry.size(1), carry.size(1));
#define VC_BACKWARD(GI, MM, PT)                                                                           \
  gru_backward_impl<GI, MM, PT>(grad_output, states, saved, weight, packed, grad_projection, grad_recurrent, \
                                grad_bias_hh, grad_bias_in, carry)
  if (gi16 && amx) VC_BACKWARD(vc_bf16, vc_bf16, float);
  else if (gi16 && mm16) VC_BACKWARD(vc_bf16, vc_bf16, vc_bf16);
  else if (gi16) VC_BACKWARD(vc_bf16, float, float);
  else if (amx) VC_BACKWARD(float, vc_bf16, float);
  else if (mm16) VC_BACKWARD(float, vc_bf16, vc_bf16);
  else VC_BACKWARD(float, float, float);
#undef VC_BACKWARD
}

// Cross-entropy over the classes of each row, mean over the rows. logits (N, C) float or bfloat16, labels (N)
// int64 in [0, C). Forward: fills log_normaliser (N) = logsumexp of each row and returns the summed loss.
// Backward: grad_logits = (softmax - one_hot) * scale, in the logits' dtype.
// Maximum and sum of a row, 8 lanes at a time (a float sum one element after another is a chain of dependent
// additions the compiler may not reorder: 4 cycles each).
static inline float vc_row_max(const float* v, int64_t count) {
  float top = -INFINITY;
  int64_t i = 0;
#ifdef VC_HAVE_AVX2
  __m256 lanes = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= count; i += 8) lanes = _mm256_max_ps(lanes, _mm256_loadu_ps(v + i));
  float parts[8];
  _mm256_storeu_ps(parts, lanes);
  for (float part : parts) top = part > top ? part : top;
#endif
  for (; i < count; ++i) top = v[i] > top ? v[i] : top;
  return top;
}

static inline float vc_row_sum(const float* v, int64_t count) {
  float sum = 0.0f;
  int64_t i = 0;
#ifdef VC_HAVE_AVX2
  __m256 lanes = _mm256_setzero_ps();
  for (; i + 8 <= count; i += 8) lanes = _mm256_add_ps(lanes, _mm256_loadu_ps(v + i));
  float parts[8];
  _mm256_storeu_ps(parts, lanes);
  for (float part : parts) sum += part;
#endif
  for (; i < count; ++i) sum += v[i];
  return sum;
}

template <typename T>
static double cross_entropy_forward_impl(const torch::Tensor& logits, const torch::Tensor& labels,
                                         torch::Tensor& log_normaliser) {
  const int64_t N = logits.size(0), C = logits.size(1);
  std::vector<float> row(C);
  const T* all = vc_data<T>(logits);
  const int64_t* label = labels.data_ptr<int64_t>();
  float* lse = log_normaliser.data_ptr<float>();
  double total = 0.0;
  for (int64_t i = 0; i < N; ++i) {
    const T* l = all + i * C;
    for (int64_t c = 0; c < C; ++c) row[c] = vc_to_float(l[c]);
    const float top = vc_row_max(row.data(), C);
    for (int64_t c = 0; c < C; ++c) row[c] -= top;
    vc_apply(row.data(), C, 0);
    lse[i] = top + std::log(vc_row_sum(row.data(), C));
    total += static_cast<double>(lse[i] - vc_to_float(l[label[i]]));
  }
  return total;
}

double cross_entropy_forward(torch::Tensor logits, torch::Tensor labels, torch::Tensor log_normaliser) {
  if (logits.scalar_type() == at::kBFloat16) return cross_entropy_forward_impl<vc_bf16>(logits, labels, log_normaliser);
  return cross_entropy_forward_impl<float>(logits, labels, log_normaliser);
}

template <typename T>
static void cross_entropy_backward_impl(const torch::Tensor& logits, const torch::Tensor& labels,
                                        const torch::Tensor& log_normaliser, double scale,
                                        torch::Tensor& grad_logits) {
  const int64_t N = logits.size(0), C = logits.size(1);
  std::vector<float> row(C);
  const T* all = vc_data<T>(logits);
  T* grad_all = vc_data<T>(grad_logits);
  const int64_t* label = labels.data_ptr<int64_t>();
  const float* lse = log_normaliser.data_ptr<float>();
  const float factor = static_cast<float>(scale);
  for (int64_t i = 0; i < N; ++i) {
    const T* l = all + i * C;
    for (int64_t c = 0; c < C; ++c) row[c] = vc_to_float(l[c]) - lse[i];
    vc_apply(row.data(), C, 0);
    row[label[i]] -= 1.0f;
    T* g = grad_all + i * C;
    for (int64_t c = 0; c < C; ++c) g[c] = vc_from_float<T>(row[c] * factor);
  }
}

void cross_entropy_backward(torch::Tensor logits, torch::Tensor labels, torch::Tensor log_normaliser, double scale,
                            torch::Tensor grad_logits) {
  if (logits.scalar_type() == at::kBFloat16)
    cross_entropy_backward_impl<vc_bf16>(logits, labels, log_normaliser, scale, grad_logits);
  else
    cross_entropy_backward_impl<float>(logits, labels, log_normaliser, scale, grad_logits);
}
"""

#: A build lock older than this is taken to be left over from a killed build.
STALE_LOCK_S = 600

_LOCK = threading.Lock()
_LOADED: dict[str, ModuleType | None] = {}


def _cache_dir() -> Path:
    root = os.environ.get("VCFRAME_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "vcframe" / "wavernn_kernel"


def pack_panels(matrix_t: torch.Tensor) -> torch.Tensor:
    """(K, N) -> (N / P, K, P) contiguous column panels for the kernel's GEMM (P = 64 or 16); unchanged if
    N is not a multiple of 16 (the kernel then uses ATen's mm)."""
    rows, columns = matrix_t.shape
    panel = 64 if columns % 64 == 0 else 16 if columns % 16 == 0 else 0
    if not panel:
        return matrix_t.contiguous()
    return matrix_t.reshape(rows, columns // panel, panel).permute(1, 0, 2).contiguous()


def _cpu_flags() -> list[str]:
    capability = torch.backends.cpu.get_cpu_capability()
    if capability in ("AVX2", "AVX512"):
        return ["-mavx2", "-mfma"]
    return []


@contextlib.contextmanager
def _build_guard(build_dir: Path) -> Iterator[None]:
    """One process at a time builds or loads the kernel in ``build_dir``.

    torch's own build lock (``build_dir/lock``) is a plain file: a build killed half-way leaves it behind and
    every later ``load_inline`` waits for it forever. We hold an ``flock`` on ``build.flock`` around the build
    instead; the kernel releases it when its holder dies, and while we hold it a leftover torch lock can only
    be stale, so it is removed. Without ``fcntl`` (Windows) a torch lock older than ``STALE_LOCK_S`` is removed.
    """
    torch_lock = build_dir / "lock"
    try:
        import fcntl
    except ImportError:
        if torch_lock.exists() and time.time() - torch_lock.stat().st_mtime > STALE_LOCK_S:
            torch_lock.unlink(missing_ok=True)
        yield
        return
    with open(build_dir / "build.flock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            torch_lock.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cache_key(flags: list[str]) -> str:
    """The build folder's name: the source, the compiler flags and the torch installation the kernel links
    against (its version and git build, its folder, the Python ABI), so that two environments with the same
    torch version each keep their own build instead of rebuilding each other's."""
    installation = [
        torch.__version__,
        str(torch.version.git_version),
        os.path.realpath(os.path.dirname(torch.__file__ or "")),
        sys.implementation.cache_tag or "",
    ]
    return hashlib.sha256(
        "\0".join([CPP_SOURCE + TRAINING_SOURCE, *installation, " ".join(flags)]).encode()
    ).hexdigest()[:16]


def load_kernel(verbose: bool = False) -> ModuleType | None:
    """The compiled kernel module, or None when it cannot be built here (no compiler, build error).

    Set ``VCFRAME_WAVERNN_NO_CPP=1`` to force the PyTorch loop.
    """
    if os.environ.get("VCFRAME_WAVERNN_NO_CPP"):
        return None
    flags = ["-O3", *_cpu_flags()]
    key = _cache_key(flags)
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        module: ModuleType | None
        try:
            from torch.utils.cpp_extension import load_inline

            build_dir = _cache_dir() / key
            build_dir.mkdir(parents=True, exist_ok=True)
            with _build_guard(build_dir):
                module = load_inline(
                    name=f"vcframe_wavernn_kernel_{key}",
                    cpp_sources=[CPP_SOURCE + TRAINING_SOURCE],
                    functions=[
                        "run_steps",
                        "gru_forward",
                        "gru_backward",
                        "cross_entropy_forward",
                        "cross_entropy_backward",
                        "amx_available",
                    ],
                    extra_cflags=flags,
                    build_directory=str(build_dir),
                    verbose=verbose,
                )
        except (OSError, RuntimeError, ImportError, ValueError) as error:  # no compiler, failed build
            if verbose:
                print(f"wavernn: C++ kernel unavailable ({str(error).splitlines()[0] if str(error) else error})")
            module = None
        _LOADED[key] = module
        return module
