"""The per-sample generation loop, and the training path's GRU and loss, as a small C++ kernel, JIT-compiled
once and cached in the user cache dir.

Built with ``torch.utils.cpp_extension.load_inline`` at first use (never at install time: pip's isolated build
environment would fetch a CUDA build of torch). Without a compiler, :func:`load_kernel` returns None and the
caller uses the pure-PyTorch loop of :mod:`vcframe_wavernn.generate`, which computes the same thing.

One call runs ``n_steps`` steps for all folds (``GENERATION_SOURCE``). Everything that does not depend on the
previous sample was precomputed by the caller as whole-block matrix products; a step is then six products (the
recurrent products, rnn2's input and the fc layers) with weights packed once by :func:`pack_matrix` in float32,
bfloat16 or int8 (per-column scales), and fused loops for the GRU gates, the residuals, the ReLUs and the sampler.
The products run on the instruction set :func:`choose_isa` picks at run time (AMX, AVX-512 with VNNI, AVX2, or
plain C++; the PyTorch loop when nothing builds). Threads split every matrix by output columns, so each core
streams only its own slice of the weights, which stays in its L2; the six stages of a step meet at barriers (spin,
then sleep on a futex).

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
from dataclasses import dataclass
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

GENERATION_SOURCE = r"""
// ---- generation (vcframe_wavernn.generate): weights packed once, the rows of every product split over threads ----
// A step's six products (W_hh1 h1, W_ih2 x1, W_hh2 h2, fc1, fc2, fc3 on the hidden part) read every weight once for
// all folds. Each matrix is packed by the caller (pack_generation_weights in kernel.py) as panels of 32 output
// columns, K padded to a multiple of 64 with zeros; a panel is contiguous, so a thread that owns a range of panels
// streams only its own slice of the weights, which stays in its core's L2 from step to step. Thread t owns the same
// column range of every matrix (for the GRUs: of each of the gates r, z, n, so it computes the new state's columns
// [j0, j1) itself); a step is six stages separated by barriers.
//
// Precision (of the weights; everything else is float32) and instruction set, chosen by the caller:
//   float32  AVX2 or AVX-512 FMA: the same per-column chain of fused multiply-adds in either (bit for bit equal to
//            each other and to the kernel before this one, hence RTVC's fixtures).
//   bfloat16 AVX2 / AVX-512: weights widened to float32, float32 activations; AMX: activations rounded to bfloat16
//            too, bfloat16 pairs summed into float32 tiles.
//   int8     per-output-column weight scales, activations quantised per fold row (scale max|a| / 127, round to
//            nearest even); the integer dot products are exact on every path (AVX2/AVX-512: float FMAs of integers
//            below 2^24; AVX-512 VNNI: vpdpbusd; AMX: tdpbssd), so all int8 paths give the same bits.
// Layouts of a panel (kp = padded K): float32 / widened bfloat16 / int8 on AVX2 (kp, 32); bfloat16 on AMX (kp / 2,
// 32, 2); int8 on VNNI and AMX (kp / 4, 32, 4). Every panel holds kp * 32 elements.

#include <atomic>

enum : int64_t { VC_P_F32 = 0, VC_P_BF16 = 1, VC_P_I8 = 2 };
enum : int64_t { VC_ISA_GENERIC = 0, VC_ISA_AVX2 = 1, VC_ISA_AVX512 = 2, VC_ISA_AMX = 3 };
enum : int64_t { VC_SAMPLE_EXP_NOISE = 0, VC_SAMPLE_ARGMAX = 1, VC_SAMPLE_INVERSE_CDF = 2 };

#if defined(VC_HAVE_AVX2) && defined(__x86_64__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define VC_HAVE_AVX512 1
#define VC_AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#endif

// The instruction sets this build can run (the caller intersects them with the CPU's).
std::vector<std::string> generation_isas() {
  std::vector<std::string> isas{"generic"};
#ifdef VC_HAVE_AVX2
  isas.push_back("avx2");
#endif
#ifdef VC_HAVE_AVX512
  isas.push_back("avx512");
#endif
#ifdef VC_HAVE_AMX
  if (vc_amx_permitted()) isas.push_back("amx");
#endif
  return isas;
}

// One fold's conditioning at one step from the frame tables (see run_packed_steps), for columns [j0, j1) of the GRU
// inputs: pre_i's into row_i (R), pre_g1's (3 gates of R) into row_g; returns the fold's aux table row, which holds
// pre_a2's at + 4R, pre_a3's at + 7R and pre_a4's at + 7R + H. The mel part is the upsampler's 5-tap sum over
// neighbouring frames, taken after the products (they are linear).
static const float* vc_frame_rows(const float* mel_table, const float* aux_table, int64_t aux_rows, int64_t aux_width,
                                  const float* taps, const int64_t* info, int64_t step, int64_t hop, int64_t R,
                                  int64_t j0, int64_t j1, float* row_i, float* row_g) {
  const int64_t position = info[2] + step;
  if (position >= info[3]) {  // past the item's end, where RTVC's folding pads with zeros: the biases alone
    const float* bias = aux_table + (aux_rows - 1) * aux_width;
    for (int64_t j = j0; j < j1; ++j) row_i[j] = bias[j];
    for (int64_t g = 0; g < 3; ++g)
      for (int64_t j = j0; j < j1; ++j) row_g[g * R + j] = bias[R + g * R + j];
    return bias;
  }
  const int64_t frame = position / hop, width = 4 * R;
  const float* tap = taps + (position - frame * hop) * 5;
  const float* aux = aux_table + (info[1] + frame) * aux_width;
  const float* mel = mel_table + (info[0] + frame) * width;  // the 5 rows frame .. frame + 4 meet the 5 taps
  const float t0 = tap[0], t1 = tap[1], t2 = tap[2], t3 = tap[3], t4 = tap[4];
  auto sum_of = [&](int64_t column) {
    const float* m = mel + column;
    return aux[column] + ((t0 * m[0] + t1 * m[width]) + (t2 * m[2 * width] + t3 * m[3 * width]) + t4 * m[4 * width]);
  };
  for (int64_t j = j0; j < j1; ++j) row_i[j] = sum_of(j);
  for (int64_t g = 0; g < 3; ++g)
    for (int64_t j = j0; j < j1; ++j) row_g[g * R + j] = sum_of(R + g * R + j);
  return aux;
}

struct VcMatrix {
  const void* weight = nullptr;     // panels, kp * 32 elements each
  const float* scale = nullptr;     // int8: (panels * 32) per-column scales
  const int32_t* colsum = nullptr;  // int8 on VNNI: (panels * 32) column sums of the integer weights
  int64_t kp = 0;
};

struct VcOperand {                  // one product's input rows, as the instruction set reads them
  const float* values = nullptr;    // (rows, kp) float32, or (int8 widened) the quantised integers as floats
  const vc_bf16* b16 = nullptr;     // (padded rows, kp) bfloat16 (AMX)
  const uint8_t* bytes = nullptr;   // (padded rows, kp) int8 (AMX) or int8 + 128 (VNNI)
  const float* row_scale = nullptr; // int8: (rows) scales of the quantised rows
  int64_t rows = 0, kp = 0;
};

// ---- panel products: C[r, 0:32] (row stride ldc) = A rows times one 32-column panel ----

template <typename W> static inline float vc_widen(W value);
template <> inline float vc_widen<float>(float value) { return value; }
template <> inline float vc_widen<vc_bf16>(vc_bf16 value) { return vc_to_float(value); }
template <> inline float vc_widen<int8_t>(int8_t value) { return static_cast<float>(value); }

template <typename W>
static void vc_panel_generic(const float* A, int64_t rows, int64_t kp, const W* B, float* C, int64_t ldc) {
  for (int64_t r = 0; r < rows; ++r) {
    float acc[32] = {};
    const float* a = A + r * kp;
    for (int64_t k = 0; k < kp; ++k)
      for (int c = 0; c < 32; ++c) acc[c] = std::fma(a[k], vc_widen<W>(B[k * 32 + c]), acc[c]);
    for (int c = 0; c < 32; ++c) C[r * ldc + c] = acc[c];
  }
}

#ifdef VC_HAVE_AVX2
static inline __m256 vc_load8w(const float* p) { return _mm256_loadu_ps(p); }
static inline __m256 vc_load8w(const vc_bf16* p) { return vc_load8(p); }
static inline __m256 vc_load8w(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// MB rows x 16 columns (half a panel): one chain of FMAs per output, k in order (the same sums as AVX-512's).
template <typename W, int MB>
static inline void vc_half_avx2(const float* A, int64_t kp, const W* B, float* C, int64_t ldc) {
  __m256 acc[MB][2];
  for (int r = 0; r < MB; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kp; ++k) {
    const __m256 w0 = vc_load8w(B + k * 32), w1 = vc_load8w(B + k * 32 + 8);
    for (int r = 0; r < MB; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r * kp + k);
      acc[r][0] = _mm256_fmadd_ps(a, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(a, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < MB; ++r) {
    _mm256_storeu_ps(C + r * ldc, acc[r][0]);
    _mm256_storeu_ps(C + r * ldc + 8, acc[r][1]);
  }
}

template <typename W>
static void vc_panel_avx2(const float* A, int64_t rows, int64_t kp, const W* B, float* C, int64_t ldc) {
  for (int half = 0; half < 2; ++half) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) vc_half_avx2<W, 4>(A + r * kp, kp, B + 16 * half, C + r * ldc + 16 * half, ldc);
    switch (rows - r) {
      case 1: vc_half_avx2<W, 1>(A + r * kp, kp, B + 16 * half, C + r * ldc + 16 * half, ldc); break;
      case 2: vc_half_avx2<W, 2>(A + r * kp, kp, B + 16 * half, C + r * ldc + 16 * half, ldc); break;
      case 3: vc_half_avx2<W, 3>(A + r * kp, kp, B + 16 * half, C + r * ldc + 16 * half, ldc); break;
      default: break;
    }
  }
}
#endif

#ifdef VC_HAVE_AVX512
VC_AVX512 static inline __m512 vc_load16w(const float* p) { return _mm512_loadu_ps(p); }
VC_AVX512 static inline __m512 vc_load16w(const vc_bf16* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}
VC_AVX512 static inline __m512 vc_load16w(const int8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}

template <typename W, int MB>
VC_AVX512 static inline void vc_rows_avx512(const float* A, int64_t kp, const W* B, float* C, int64_t ldc) {
  __m512 acc[MB][2];
  for (int r = 0; r < MB; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kp; ++k) {
    const __m512 w0 = vc_load16w(B + k * 32), w1 = vc_load16w(B + k * 32 + 16);
    for (int r = 0; r < MB; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * kp + k]);
      acc[r][0] = _mm512_fmadd_ps(a, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < MB; ++r) {
    _mm512_storeu_ps(C + r * ldc, acc[r][0]);
    _mm512_storeu_ps(C + r * ldc + 16, acc[r][1]);
  }
}

template <typename W>
VC_AVX512 static void vc_panel_avx512(const float* A, int64_t rows, int64_t kp, const W* B, float* C, int64_t ldc) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) vc_rows_avx512<W, 8>(A + r * kp, kp, B, C + r * ldc, ldc);
  const float* a = A + r * kp;
  float* c = C + r * ldc;
  switch (rows - r) {
    case 1: vc_rows_avx512<W, 1>(a, kp, B, c, ldc); break;
    case 2: vc_rows_avx512<W, 2>(a, kp, B, c, ldc); break;
    case 3: vc_rows_avx512<W, 3>(a, kp, B, c, ldc); break;
    case 4: vc_rows_avx512<W, 4>(a, kp, B, c, ldc); break;
    case 5: vc_rows_avx512<W, 5>(a, kp, B, c, ldc); break;
    case 6: vc_rows_avx512<W, 6>(a, kp, B, c, ldc); break;
    case 7: vc_rows_avx512<W, 7>(a, kp, B, c, ldc); break;
    default: break;
  }
}

// int8 on AVX-512 VNNI: A as uint8 (int8 + 128), B (kp / 4, 32, 4) int8; C = the exact integer sums as floats
// (the + 128 offset taken out with the column sums).
template <int MB>
VC_AVX512 static inline void vc_rows_vnni(const uint8_t* A, int64_t kp, const int8_t* B, const int32_t* colsum,
                                          float* C, int64_t ldc) {
  __m512i acc[MB][2];
  for (int r = 0; r < MB; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
  for (int64_t q = 0; q < kp / 4; ++q) {
    const __m512i w0 = _mm512_loadu_si512(B + q * 128), w1 = _mm512_loadu_si512(B + q * 128 + 64);
    for (int r = 0; r < MB; ++r) {
      int32_t quad;
      std::memcpy(&quad, A + r * kp + 4 * q, sizeof(quad));
      const __m512i a = _mm512_set1_epi32(quad);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], a, w0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], a, w1);
    }
  }
  const __m512i offset0 = _mm512_slli_epi32(_mm512_loadu_si512(colsum), 7);
  const __m512i offset1 = _mm512_slli_epi32(_mm512_loadu_si512(colsum + 16), 7);
  for (int r = 0; r < MB; ++r) {
    _mm512_storeu_ps(C + r * ldc, _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][0], offset0)));
    _mm512_storeu_ps(C + r * ldc + 16, _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][1], offset1)));
  }
}

VC_AVX512 static void vc_panel_vnni(const uint8_t* A, int64_t rows, int64_t kp, const int8_t* B, const int32_t* colsum,
                                    float* C, int64_t ldc) {
  int64_t r = 0;
  for (; r + 8 <= rows; r += 8) vc_rows_vnni<8>(A + r * kp, kp, B, colsum, C + r * ldc, ldc);
  const uint8_t* a = A + r * kp;
  float* c = C + r * ldc;
  switch (rows - r) {
    case 1: vc_rows_vnni<1>(a, kp, B, colsum, c, ldc); break;
    case 2: vc_rows_vnni<2>(a, kp, B, colsum, c, ldc); break;
    case 3: vc_rows_vnni<3>(a, kp, B, colsum, c, ldc); break;
    case 4: vc_rows_vnni<4>(a, kp, B, colsum, c, ldc); break;
    case 5: vc_rows_vnni<5>(a, kp, B, colsum, c, ldc); break;
    case 6: vc_rows_vnni<6>(a, kp, B, colsum, c, ldc); break;
    case 7: vc_rows_vnni<7>(a, kp, B, colsum, c, ldc); break;
    default: break;
  }
}
#endif

#ifdef VC_HAVE_AMX
static vc_tile_config vc_generation_tiles() {
  vc_tile_config config;
  for (int tile = 0; tile < 8; ++tile) {  // every tile 16 rows x 64 bytes
    config.rows[tile] = 16;
    config.colsb[tile] = 64;
  }
  return config;
}
// A global, not a local: GCC 12 dropped the stores to a local configuration that only ldtilecfg reads (the
// instruction then faulted on the uninitialised bytes).
static const vc_tile_config vc_generation_tile_config = vc_generation_tiles();
__attribute__((target("amx-tile"))) static void vc_amx_configure() { _tile_loadconfig(&vc_generation_tile_config); }
__attribute__((target("amx-tile"))) static void vc_amx_release() { _tile_release(); }

// bfloat16: A (padded rows, kp) bfloat16, B (kp / 2, 32, 2); C float, every padded row written.
__attribute__((target("amx-tile,amx-bf16"))) static void vc_panel_amx_bf16(const vc_bf16* A, int64_t padded_rows,
                                                                           int64_t kp, const vc_bf16* B, float* C,
                                                                           int64_t ldc) {
  for (int64_t m = 0; m < padded_rows; m += 16) {
    _tile_zero(0);
    _tile_zero(1);
    for (int64_t k = 0; k < kp; k += 32) {
      _tile_loadd(4, A + m * kp + k, kp * 2);
      _tile_loadd(6, B + k * 32, 128);
      _tile_loadd(7, B + k * 32 + 32, 128);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
    }
    _tile_stored(0, C + m * ldc, ldc * 4);
    _tile_stored(1, C + m * ldc + 16, ldc * 4);
  }
}

// int8: A (rows padded to 16, kp) int8, B (kp / 4, 32, 4); C[:rows] = the integer sums as floats (sums: 16 x 32
// scratch).
__attribute__((target("amx-tile,amx-int8"))) static void vc_panel_amx_int8(const uint8_t* A, int64_t rows,
                                                                           int64_t kp, const int8_t* B, float* C,
                                                                           int64_t ldc, int32_t* sums) {
  const int64_t padded_rows = (rows + 15) / 16 * 16;
  for (int64_t m = 0; m < padded_rows; m += 16) {
    _tile_zero(0);
    _tile_zero(1);
    for (int64_t k = 0; k < kp; k += 64) {
      _tile_loadd(4, A + m * kp + k, kp);
      _tile_loadd(6, B + k * 32, 128);
      _tile_loadd(7, B + k * 32 + 64, 128);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
    }
    _tile_stored(0, sums, 128);
    _tile_stored(1, sums + 16, 128);
    for (int64_t r = 0; r < std::min<int64_t>(16, rows - m); ++r)
      for (int c = 0; c < 32; ++c) C[(m + r) * ldc + c] = static_cast<float>(sums[r * 32 + c]);
  }
}
#endif

// ---- one thread's scratch: its copy of a stage's input in the form its products read ----
struct VcScratch {
  std::vector<float> values, row_scale;
  std::vector<vc_bf16> b16;
  std::vector<uint8_t> bytes;
  std::vector<int32_t> sums;
  VcScratch(int64_t padded_rows, int64_t kmax)
      : values(padded_rows * kmax, 0.0f), row_scale(padded_rows, 0.0f), b16(padded_rows * kmax, 0),
        bytes(padded_rows * kmax, 0), sums(16 * 32, 0) {}
};

// Row scale max|a| / 127 and integers round(a * 127 / max|a|) (nearest even), 0 for an all-zero row; with
// `bytes`, the integers also as bytes plus `offset` (0: int8 for AMX, 128: uint8 for VNNI). The AVX2 lanes do the
// same operations as the scalar tail (max is exact, one rounding per product, round to nearest even).
static inline float vc_quantise_row(const float* a, int64_t kp, float* integers, uint8_t* bytes, int offset) {
  float top = 0.0f;
  int64_t k = 0;
#ifdef VC_HAVE_AVX2
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 lanes = _mm256_setzero_ps();
  for (; k + 8 <= kp; k += 8) lanes = _mm256_max_ps(lanes, _mm256_andnot_ps(sign, _mm256_loadu_ps(a + k)));
  float parts[8];
  _mm256_storeu_ps(parts, lanes);
  for (float part : parts) top = std::fmax(top, part);
#endif
  for (; k < kp; ++k) top = std::fmax(top, std::fabs(a[k]));
  const float inverse = top > 0.0f ? 127.0f / top : 0.0f;
  k = 0;
#ifdef VC_HAVE_AVX2
  const __m256 scale = _mm256_set1_ps(inverse), high = _mm256_set1_ps(127.0f), low = _mm256_set1_ps(-127.0f);
  const __m256i shift = _mm256_set1_epi32(offset);
  for (; k + 8 <= kp; k += 8) {
    const __m256 rounded = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(a + k), scale),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 clamped = _mm256_min_ps(high, _mm256_max_ps(low, rounded));
    _mm256_storeu_ps(integers + k, clamped);
    if (bytes) {
      const __m256i words = _mm256_add_epi32(_mm256_cvtps_epi32(clamped), shift);
      alignas(32) int32_t values[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(values), words);
      for (int i = 0; i < 8; ++i) bytes[k + i] = static_cast<uint8_t>(values[i]);
    }
  }
#endif
  for (; k < kp; ++k) {
    integers[k] = std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(a[k] * inverse)));
    if (bytes) bytes[k] = static_cast<uint8_t>(static_cast<int32_t>(integers[k]) + offset);
  }
  return top / 127.0f;
}

static VcOperand vc_prepare(const float* rows_in, int64_t rows, int64_t kp, int64_t precision, int64_t isa,
                            VcScratch& scratch) {
  VcOperand operand;
  operand.rows = rows;
  operand.kp = kp;
  operand.values = rows_in;
  if (precision == VC_P_BF16 && isa == VC_ISA_AMX) {
    int64_t i = 0;
#ifdef VC_HAVE_AVX2
    for (; i + 8 <= rows * kp; i += 8) vc_store8(scratch.b16.data() + i, _mm256_loadu_ps(rows_in + i));
#endif
    for (; i < rows * kp; ++i) scratch.b16[i] = vc_from_float<vc_bf16>(rows_in[i]);
    operand.b16 = scratch.b16.data();
  } else if (precision == VC_P_I8) {
    const bool as_bytes = isa == VC_ISA_AMX || isa == VC_ISA_AVX512;
    const int offset = isa == VC_ISA_AMX ? 0 : 128;
    float* integers = scratch.values.data();
    for (int64_t r = 0; r < rows; ++r)
      scratch.row_scale[r] = vc_quantise_row(rows_in + r * kp, kp, integers + r * kp,
                                             as_bytes ? scratch.bytes.data() + r * kp : nullptr, offset);
    operand.row_scale = scratch.row_scale.data();
    operand.values = integers;
    if (as_bytes) operand.bytes = scratch.bytes.data();
  }
  return operand;
}

// C[:, 32 p : 32 (p + 1)] for panels p in [p0, p1) of `matrix` (C has padded rows for AMX), int8 scales applied.
static void vc_product(const VcMatrix& matrix, const VcOperand& a, int64_t padded_rows, int64_t p0, int64_t p1,
                       float* C, int64_t ldc, int64_t precision, int64_t isa, VcScratch& scratch) {
  const int64_t kp = matrix.kp, panel = kp * 32;
  for (int64_t p = p0; p < p1; ++p) {
    float* c = C + 32 * p;
    if (precision == VC_P_F32) {
      const float* w = static_cast<const float*>(matrix.weight) + p * panel;
#ifdef VC_HAVE_AVX512
      if (isa >= VC_ISA_AVX512) { vc_panel_avx512<float>(a.values, a.rows, kp, w, c, ldc); continue; }
#endif
#ifdef VC_HAVE_AVX2
      if (isa >= VC_ISA_AVX2) { vc_panel_avx2<float>(a.values, a.rows, kp, w, c, ldc); continue; }
#endif
      vc_panel_generic<float>(a.values, a.rows, kp, w, c, ldc);
    } else if (precision == VC_P_BF16) {
      const vc_bf16* w = static_cast<const vc_bf16*>(matrix.weight) + p * panel;
#ifdef VC_HAVE_AMX
      if (isa == VC_ISA_AMX) { vc_panel_amx_bf16(a.b16, padded_rows, kp, w, c, ldc); continue; }
#endif
#ifdef VC_HAVE_AVX512
      if (isa >= VC_ISA_AVX512) { vc_panel_avx512<vc_bf16>(a.values, a.rows, kp, w, c, ldc); continue; }
#endif
#ifdef VC_HAVE_AVX2
      if (isa >= VC_ISA_AVX2) { vc_panel_avx2<vc_bf16>(a.values, a.rows, kp, w, c, ldc); continue; }
#endif
      vc_panel_generic<vc_bf16>(a.values, a.rows, kp, w, c, ldc);
    } else {
      const int8_t* w = static_cast<const int8_t*>(matrix.weight) + p * panel;
      bool done = false;
#ifdef VC_HAVE_AMX
      if (!done && isa == VC_ISA_AMX) {
        vc_panel_amx_int8(a.bytes, a.rows, kp, w, c, ldc, scratch.sums.data());
        done = true;
      }
#endif
#ifdef VC_HAVE_AVX512
      if (!done && isa == VC_ISA_AVX512) {
        vc_panel_vnni(a.bytes, a.rows, kp, w, matrix.colsum + 32 * p, c, ldc);
        done = true;
      }
#endif
#ifdef VC_HAVE_AVX2
      if (!done && isa >= VC_ISA_AVX2) {
        vc_panel_avx2<int8_t>(a.values, a.rows, kp, w, c, ldc);
        done = true;
      }
#endif
      if (!done) vc_panel_generic<int8_t>(a.values, a.rows, kp, w, c, ldc);
      const float* column_scale = matrix.scale + 32 * p;
      for (int64_t r = 0; r < a.rows; ++r)
        for (int cc = 0; cc < 32; ++cc) c[r * ldc + cc] = (c[r * ldc + cc] * a.row_scale[r]) * column_scale[cc];
    }
  }
}

// The inverse-CDF draw: the first class whose running sum of `weights` (exp(logit - max), unnormalised) exceeds
// uniform * their total. Chunks of 8 classes are summed in a fixed tree, the chunk sums in class order, and only the
// chunk holding the threshold is summed class by class: the same float operations on every instruction set, and
// about 600 additions for 512 classes instead of 512 dependent ones. Where rounding leaves the threshold past every
// running sum (uniform within about 1e-7 of 1), the last class.
static int64_t vc_inverse_cdf(const float* weights, int64_t count, double uniform, float* chunk_sums) {
  const int64_t chunks = (count + 7) / 8;
  float total = 0.0f;
  for (int64_t j = 0; j < chunks; ++j) {
    float w[8];
    for (int i = 0; i < 8; ++i) w[i] = 8 * j + i < count ? weights[8 * j + i] : 0.0f;
    chunk_sums[j] = ((w[0] + w[1]) + (w[2] + w[3])) + ((w[4] + w[5]) + (w[6] + w[7]));
    total += chunk_sums[j];
  }
  const double threshold = uniform * static_cast<double>(total);
  float running = 0.0f;
  for (int64_t j = 0; j < chunks; ++j) {
    const float next = running + chunk_sums[j];
    if (static_cast<double>(next) > threshold) {
      float partial = running;
      for (int64_t c = 8 * j; c < std::min(count, 8 * j + 8); ++c) {
        partial += weights[c];
        if (static_cast<double>(partial) > threshold) return c;
      }
    }
    running = next;
  }
  return count - 1;
}

#if defined(__linux__)
#include <climits>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#define VC_HAVE_FUTEX 1
#endif

// A barrier for the threads of one call: spin briefly (a peer on a core of its own arrives within microseconds),
// then sleep in the kernel (a Linux futex on the phase word; elsewhere yield), so that a thread waiting for a peer
// another job has descheduled leaves its core to that job instead of spinning on it.
struct VcBarrier {
  std::atomic<int64_t> waiting{0};
  std::atomic<int32_t> phase{0};     // the futex word
  std::atomic<int32_t> sleepers{0};  // threads asleep (or about to be) on the phase
  int64_t count = 1;
  void wait() {
    if (count == 1) return;
    const int32_t current = phase.load(std::memory_order_acquire);
    if (waiting.fetch_add(1, std::memory_order_acq_rel) == count - 1) {
      waiting.store(0, std::memory_order_relaxed);
      phase.store(current + 1, std::memory_order_seq_cst);
#ifdef VC_HAVE_FUTEX
      // seq_cst pairs with the sleeper's increment then load: either it sees the new phase or we see it
      if (sleepers.load(std::memory_order_seq_cst) > 0)
        syscall(SYS_futex, reinterpret_cast<int32_t*>(&phase), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
#endif
      return;
    }
    for (int spins = 0; phase.load(std::memory_order_acquire) == current; ++spins) {
      if (spins < 4000) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      } else {
#ifdef VC_HAVE_FUTEX
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        if (phase.load(std::memory_order_seq_cst) == current)  // the kernel checks it again before sleeping
          syscall(SYS_futex, reinterpret_cast<int32_t*>(&phase), FUTEX_WAIT_PRIVATE, current, nullptr, nullptr, 0);
        sleepers.fetch_sub(1, std::memory_order_seq_cst);
#else
        std::this_thread::yield();
#endif
      }
    }
  }
};

// Runs n_steps generation steps. Shapes (F folds, R rnn dims, H fc dims, C classes, K >= n_steps). The conditioning
// comes in one of two forms:
//   5 precomputed inputs (RTVC's arithmetic): pre_i (K,F,R) = I(mel, a1) + bias without the sample term;
//     pre_g1 (K,F,3R) = W_ih1 pre_i + b_ih1; pre_a2 (K,F,3R) = W_ih2[:,R:] a2 + b_ih2; pre_a3 (K,F,H) = fc1 a3 part
//     + bias; pre_a4 (K,F,H) likewise.
//   4 frame tables, the same sums formed at each step from per-frame products (vc_frame_rows): mel_table
//     (rows, 4R) = mel frame @ [W_I,mel | W_I,mel W_ih1^T]; aux_table (rows, 7R + 2H) = per aux frame
//     [I's aux part + bias | the same through W_ih1 + b_ih1 | pre_a2's | pre_a3's | pre_a4's], its last row the biases
//     alone (positions past an item's end, which RTVC's folding pads with zeros); taps (hop, 5) the upsampler's mel
//     path by phase (UpsampleNetwork.phase_taps); fold_info (F, 4) int64 per fold [first mel row, first aux row,
//     position of this call's first step, the item's samples].
// sampler VC_SAMPLE_*: EXP_NOISE takes argmax(softmax / noise) with noise (K,F,C) float Exp(1) draws (RTVC's
// Categorical); ARGMAX ignores noise; INVERSE_CDF draws each class by vc_inverse_cdf with noise (K,F) float64 uniform
// draws in [0, 1). forced (K,F) or empty: the previous sample fed at each step
// instead of the drawn one (teacher forcing); logits_out (K,F,C) or empty: receives each step's logits.
// vectors: w_sample (R), v_sample (3R), b_hh1 (3R), b_hh2 (3R), b3 (C), table (C). weights / scales / colsums:
// W_hh1^T, W_ih2[:, :R]^T, W_hh2^T, fc1[:, :R]^T, fc2[:, :H]^T, fc3^T packed (see above). State x (F),
// h1 (F,R), h2 (F,R) is updated in place; out (K,F) receives the samples.
void run_packed_steps(std::vector<torch::Tensor> pre, torch::Tensor noise, int64_t sampler, torch::Tensor forced,
                      torch::Tensor logits_out, std::vector<torch::Tensor> vectors, std::vector<torch::Tensor> weights,
                      std::vector<torch::Tensor> scales, std::vector<torch::Tensor> colsums, torch::Tensor x,
                      torch::Tensor h1, torch::Tensor h2, torch::Tensor out, int64_t n_steps, int64_t precision,
                      int64_t isa, int64_t threads, int64_t fc_dims, int64_t classes) {
  TORCH_CHECK((pre.size() == 5 || pre.size() == 4) && vectors.size() == 6 && weights.size() == 6 &&
                  scales.size() == 6 && colsums.size() == 6,
              "run_packed_steps: 5 precomputed inputs or 4 frame tables, 6 vectors and 6 packed matrices expected");
  const int64_t F = h1.size(0), R = h1.size(1), H = fc_dims, C = classes;
  const int64_t padded_rows = (F + 15) / 16 * 16;
  VcMatrix mats[6];
  for (int i = 0; i < 6; ++i) {
    mats[i].weight = weights[i].data_ptr();
    mats[i].scale = scales[i].numel() ? scales[i].data_ptr<float>() : nullptr;
    mats[i].colsum = colsums[i].numel() ? colsums[i].data_ptr<int32_t>() : nullptr;
    mats[i].kp = weights[i].numel() / weights[i].size(0) / 32;
  }
  const int64_t Rk = mats[0].kp, Hk = mats[4].kp;                          // padded K of R- and H-wide inputs
  const int64_t Rp = weights[0].size(0) / 3 * 32, Hp = weights[3].size(0) * 32, Cp = weights[5].size(0) * 32;
  TORCH_CHECK(Rp >= R && Hp >= H && Cp >= C && Rk >= R && Hk >= H, "run_packed_steps: packed sizes do not fit");
  auto opts = h1.options();
  auto zeros = [&](int64_t rows, int64_t columns) { return torch::zeros({rows, columns}, opts); };
  torch::Tensor h1s[2] = {zeros(padded_rows, Rk), zeros(padded_rows, Rk)};
  torch::Tensor h2s[2] = {zeros(padded_rows, Rk), zeros(padded_rows, Rk)};
  h1s[0].narrow(0, 0, F).narrow(1, 0, R).copy_(h1);
  h2s[0].narrow(0, 0, F).narrow(1, 0, R).copy_(h2);
  torch::Tensor x1 = zeros(padded_rows, Rk), x2 = zeros(padded_rows, Rk);
  torch::Tensor y1 = zeros(padded_rows, Hk), y2 = zeros(padded_rows, Hk);
  torch::Tensor gh1 = zeros(padded_rows, 3 * Rp), gi2 = zeros(padded_rows, 3 * Rp), gh2 = zeros(padded_rows, 3 * Rp);
  torch::Tensor z1 = zeros(padded_rows, Hp), z2 = zeros(padded_rows, Hp), logits = zeros(padded_rows, Cp);
  const float* w0 = vectors[0].data_ptr<float>();
  const float* v1 = vectors[1].data_ptr<float>();
  const float* bh1 = vectors[2].data_ptr<float>();
  const float* bh2 = vectors[3].data_ptr<float>();
  const float* b3 = vectors[4].data_ptr<float>();
  const float* table = vectors[5].data_ptr<float>();
  const bool tables = pre.size() == 4;
  const float *pre_i = nullptr, *pre_g1 = nullptr, *pre_a2 = nullptr, *pre_a3 = nullptr, *pre_a4 = nullptr;
  const float *mel_table = nullptr, *aux_table = nullptr, *taps = nullptr;
  const int64_t* fold_info = nullptr;
  int64_t aux_rows = 0, aux_width = 0, hop = 1;
  if (tables) {
    TORCH_CHECK(pre[0].size(1) == 4 * R && pre[1].size(1) == 7 * R + 2 * H && pre[2].size(1) == 5 &&
                    pre[3].size(0) == F && pre[3].size(1) == 4 && pre[1].size(0) >= 1,
                "run_packed_steps: frame tables of the wrong shape");
    mel_table = pre[0].data_ptr<float>();
    aux_table = pre[1].data_ptr<float>();
    taps = pre[2].data_ptr<float>();
    fold_info = pre[3].data_ptr<int64_t>();
    aux_rows = pre[1].size(0);
    aux_width = pre[1].size(1);
    hop = pre[2].size(0);
  } else {
    pre_i = pre[0].data_ptr<float>();
    pre_g1 = pre[1].data_ptr<float>();
    pre_a2 = pre[2].data_ptr<float>();
    pre_a3 = pre[3].data_ptr<float>();
    pre_a4 = pre[4].data_ptr<float>();
  }
  TORCH_CHECK(sampler >= VC_SAMPLE_EXP_NOISE && sampler <= VC_SAMPLE_INVERSE_CDF, "run_packed_steps: unknown sampler");
  const float* pnoise = sampler == VC_SAMPLE_EXP_NOISE ? noise.data_ptr<float>() : nullptr;
  const double* puniform = sampler == VC_SAMPLE_INVERSE_CDF ? noise.data_ptr<double>() : nullptr;
  const float* pforced = forced.numel() ? forced.data_ptr<float>() : nullptr;
  float* plogits_out = logits_out.numel() ? logits_out.data_ptr<float>() : nullptr;
  float* px = x.data_ptr<float>();
  float* pout = out.data_ptr<float>();
  float* ph1[2] = {h1s[0].data_ptr<float>(), h1s[1].data_ptr<float>()};
  float* ph2[2] = {h2s[0].data_ptr<float>(), h2s[1].data_ptr<float>()};
  float* px1 = x1.data_ptr<float>();
  float* px2 = x2.data_ptr<float>();
  float* py1 = y1.data_ptr<float>();
  float* py2 = y2.data_ptr<float>();
  float* pgh1 = gh1.data_ptr<float>();
  float* pgi2 = gi2.data_ptr<float>();
  float* pgh2 = gh2.data_ptr<float>();
  float* pz1 = z1.data_ptr<float>();
  float* pz2 = z2.data_ptr<float>();
  float* plog = logits.data_ptr<float>();
  const int64_t gru_panels = Rp / 32, fc_panels = Hp / 32, out_panels = Cp / 32;
  threads = std::max<int64_t>(1, std::min<int64_t>(threads, std::max(gru_panels, out_panels)));
  VcBarrier barrier;
  barrier.count = threads;
  const int64_t ldg = 3 * Rp;

  auto run_thread = [&](int64_t t) {
    VcScratch scratch(padded_rows, std::max(Rk, Hk));
    std::vector<float> scores(C), chunk_sums((C + 7) / 8);
    std::vector<float> cond_i(tables ? F * R : 0), cond_g(tables ? F * 3 * R : 0);  // this thread's columns only
    std::vector<const float*> fold_aux(F, nullptr);
#ifdef VC_HAVE_AMX
    if (isa == VC_ISA_AMX) vc_amx_configure();
#endif
    auto range = [&](int64_t panels) { return std::make_pair(panels * t / threads, panels * (t + 1) / threads); };
    const auto gp = range(gru_panels), fp = range(fc_panels), op = range(out_panels);
    const int64_t j0 = std::min(R, 32 * gp.first), j1 = std::min(R, 32 * gp.second);
    auto gate_product = [&](int m, const VcOperand& a, float* C_) {
      for (int64_t g = 0; g < 3; ++g)
        vc_product(mats[m], a, padded_rows, g * gru_panels + gp.first, g * gru_panels + gp.second, C_, ldg, precision,
                   isa, scratch);
    };
    for (int64_t k = 0; k < n_steps; ++k) {
      const int64_t cur = k & 1, nxt = cur ^ 1;
      const float* h1c = ph1[cur];
      float* h1n = ph1[nxt];
      const float* h2c = ph2[cur];
      float* h2n = ph2[nxt];
      // stage A: rnn1
      if (tables)
        for (int64_t f = 0; f < F; ++f)
          fold_aux[f] = vc_frame_rows(mel_table, aux_table, aux_rows, aux_width, taps, fold_info + 4 * f, k, hop, R, j0,
                                      j1, cond_i.data() + f * R, cond_g.data() + f * 3 * R);
      gate_product(0, vc_prepare(h1c, F, Rk, precision, isa, scratch), pgh1);
      for (int64_t f = 0; f < F && j1 > j0; ++f) {
        const float xs = pforced ? pforced[k * F + f] : px[f];
        const float* gi = tables ? cond_g.data() + f * 3 * R : pre_g1 + (k * F + f) * 3 * R;
        const float* pif = tables ? cond_i.data() + f * R : pre_i + (k * F + f) * R;
        float* gh = pgh1 + f * ldg;  // becomes r | z | n in place
        for (int64_t j = j0; j < j1; ++j) gh[j] = (gh[j] + bh1[j]) + (xs * v1[j] + gi[j]);
        for (int64_t j = j0; j < j1; ++j) gh[Rp + j] = (gh[Rp + j] + bh1[R + j]) + (xs * v1[R + j] + gi[R + j]);
        vc_apply(gh + j0, j1 - j0, 1);
        vc_apply(gh + Rp + j0, j1 - j0, 1);
        for (int64_t j = j0; j < j1; ++j)
          gh[2 * Rp + j] = (xs * v1[2 * R + j] + gi[2 * R + j]) + (gh[2 * Rp + j] + bh1[2 * R + j]) * gh[j];
        vc_apply(gh + 2 * Rp + j0, j1 - j0, 2);
        for (int64_t j = j0; j < j1; ++j) {
          const float n = gh[2 * Rp + j];
          const float hn = (h1c[f * Rk + j] - n) * gh[Rp + j] + n;
          h1n[f * Rk + j] = hn;
          px1[f * Rk + j] = (xs * w0[j] + pif[j]) + hn;
        }
      }
      barrier.wait();
      // stage B: rnn2
      gate_product(1, vc_prepare(px1, F, Rk, precision, isa, scratch), pgi2);
      gate_product(2, vc_prepare(h2c, F, Rk, precision, isa, scratch), pgh2);
      for (int64_t f = 0; f < F && j1 > j0; ++f) {
        const float* gi = pgi2 + f * ldg;
        const float* ga = tables ? fold_aux[f] + 4 * R : pre_a2 + (k * F + f) * 3 * R;
        float* gh = pgh2 + f * ldg;
        for (int64_t j = j0; j < j1; ++j) gh[j] = (gh[j] + bh2[j]) + (gi[j] + ga[j]);
        for (int64_t j = j0; j < j1; ++j) gh[Rp + j] = (gh[Rp + j] + bh2[R + j]) + (gi[Rp + j] + ga[R + j]);
        vc_apply(gh + j0, j1 - j0, 1);
        vc_apply(gh + Rp + j0, j1 - j0, 1);
        for (int64_t j = j0; j < j1; ++j)
          gh[2 * Rp + j] = (gi[2 * Rp + j] + ga[2 * R + j]) + (gh[2 * Rp + j] + bh2[2 * R + j]) * gh[j];
        vc_apply(gh + 2 * Rp + j0, j1 - j0, 2);
        for (int64_t j = j0; j < j1; ++j) {
          const float n = gh[2 * Rp + j];
          const float hn = (h2c[f * Rk + j] - n) * gh[Rp + j] + n;
          h2n[f * Rk + j] = hn;
          px2[f * Rk + j] = px1[f * Rk + j] + hn;
        }
      }
      barrier.wait();
      // stage C, D: fc1, fc2 with ReLU
      const int64_t n0 = std::min(H, 32 * fp.first), n1 = std::min(H, 32 * fp.second);
      vc_product(mats[3], vc_prepare(px2, F, Rk, precision, isa, scratch), padded_rows, fp.first, fp.second, pz1, Hp,
                 precision, isa, scratch);
      for (int64_t f = 0; f < F; ++f) {
        const float* a3 = tables ? fold_aux[f] + 7 * R : pre_a3 + (k * F + f) * H;
        for (int64_t n = n0; n < n1; ++n) { float v = pz1[f * Hp + n] + a3[n]; py1[f * Hk + n] = v > 0.0f ? v : 0.0f; }
      }
      barrier.wait();
      vc_product(mats[4], vc_prepare(py1, F, Hk, precision, isa, scratch), padded_rows, fp.first, fp.second, pz2, Hp,
                 precision, isa, scratch);
      for (int64_t f = 0; f < F; ++f) {
        const float* a4 = tables ? fold_aux[f] + 7 * R + H : pre_a4 + (k * F + f) * H;
        for (int64_t n = n0; n < n1; ++n) { float v = pz2[f * Hp + n] + a4[n]; py2[f * Hk + n] = v > 0.0f ? v : 0.0f; }
      }
      barrier.wait();
      // stage E: fc3
      const int64_t c0 = std::min(C, 32 * op.first), c1 = std::min(C, 32 * op.second);
      vc_product(mats[5], vc_prepare(py2, F, Hk, precision, isa, scratch), padded_rows, op.first, op.second, plog, Cp,
                 precision, isa, scratch);
      for (int64_t f = 0; f < F; ++f)
        for (int64_t c = c0; c < c1; ++c) plog[f * Cp + c] += b3[c];
      barrier.wait();
      // stage F: the sampler, folds split over the threads
      for (int64_t f = t; f < F; f += threads) {
        float* l = plog + f * Cp;
        if (plogits_out) std::memcpy(plogits_out + (k * F + f) * C, l, C * sizeof(float));
        float top = -INFINITY;
        for (int64_t c = 0; c < C; ++c) top = l[c] > top ? l[c] : top;
        for (int64_t c = 0; c < C; ++c) scores[c] = l[c] - top;
        vc_apply(scores.data(), C, 0);
        int64_t best = 0;
        if (puniform) {
          best = vc_inverse_cdf(scores.data(), C, puniform[k * F + f], chunk_sums.data());
        } else {
          if (pnoise) {
            const float* e = pnoise + (k * F + f) * C;
            for (int64_t c = 0; c < C; ++c) scores[c] = scores[c] / e[c];
          }
          float best_score = scores[0];
          for (int64_t c = 1; c < C; ++c) if (scores[c] > best_score) { best_score = scores[c]; best = c; }
        }
        px[f] = table[best];
        pout[k * F + f] = px[f];
      }
      barrier.wait();
    }
#ifdef VC_HAVE_AMX
    if (isa == VC_ISA_AMX) vc_amx_release();
#endif
  };
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) workers.emplace_back(run_thread, t);
  run_thread(0);
  for (auto& worker : workers) worker.join();
  const int64_t last = n_steps & 1;
  h1.copy_(h1s[last].narrow(0, 0, F).narrow(1, 0, R));
  h2.copy_(h2s[last].narrow(0, 0, F).narrow(1, 0, R));
}
"""

#: A build lock older than this is taken to be left over from a killed build.
STALE_LOCK_S = 600

_LOCK = threading.Lock()
_LOADED: dict[str, ModuleType | None] = {}


def _cache_dir() -> Path:
    root = os.environ.get("VCFRAME_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "vcframe" / "wavernn_kernel"


#: Weight precisions of the generation kernel.
PRECISIONS = ("float32", "bfloat16", "int8")
#: Instruction sets of the generation kernel, best first ("generic": plain C++, any CPU).
ISAS = ("amx", "avx512", "avx2", "generic")
_ISA_CODES = {"generic": 0, "avx2": 1, "avx512": 2, "amx": 3}
_PRECISION_CODES = {"float32": 0, "bfloat16": 1, "int8": 2}
#: Columns of a packed panel, and the multiple K is padded to (one AMX int8 tile row).
PANEL, K_MULTIPLE = 32, 64


@dataclass
class PackedMatrix:
    """One product's weights as the generation kernel reads them (see ``GENERATION_SOURCE``).

    Attributes:
        weight: panels of ``PANEL`` output columns, ``(panels, kp, 32)`` (float32, bfloat16, int8 on AVX2),
            ``(panels, kp / 2, 32, 2)`` (bfloat16 on AMX) or ``(panels, kp / 4, 32, 4)`` (int8 on VNNI / AMX).
        scale: int8: ``(panels * 32,)`` per-column scales (the weight is ``integer * scale``); else empty.
        colsum: int8 on VNNI: ``(panels * 32,)`` int32 column sums of the integers; else empty.
        dequantized: ``(K, N)`` float32, the weights the kernel computes with (the integers for int8), for the
            PyTorch loop.
        dequantized_scale: int8: ``(N,)`` the scales of ``dequantized``'s columns; else None.
    """

    weight: torch.Tensor
    scale: torch.Tensor
    colsum: torch.Tensor
    dequantized: torch.Tensor
    dequantized_scale: torch.Tensor | None


def quantize_columns(matrix_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, N) float -> (integers in [-127, 127] as int8 (K, N), per-column scales (N,)): ``matrix_t`` is about
    ``integers * scales``, each column's largest magnitude mapped to 127 (an all-zero column gets scale 0)."""
    top = matrix_t.abs().amax(dim=0)
    scales = top / 127.0
    safe = torch.where(top > 0, scales, torch.ones_like(scales))
    integers = torch.round(matrix_t / safe).clamp_(-127, 127).to(torch.int8)
    return integers, scales


def quantize_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's int8 activations: (M, K) float -> (the integers as float (M, K), scales (M, 1)), each row's
    largest magnitude mapped to 127, rounded to nearest even (an all-zero row gets integers and scale 0)."""
    top = rows.abs().amax(dim=1, keepdim=True)
    inverse = torch.where(top > 0, 127.0 / torch.where(top > 0, top, torch.ones_like(top)), torch.zeros_like(top))
    return torch.round(rows * inverse).clamp_(-127, 127), top / 127.0


def pack_matrix(matrix_t: torch.Tensor, precision: str, isa: str, gates: int = 1) -> PackedMatrix:
    """(K, N) float32 weights (``N = gates * columns``: a GRU's r | z | n blocks) -> the kernel's panels.

    Each gate's columns are padded to a multiple of ``PANEL`` and K to a multiple of ``K_MULTIPLE`` with zeros.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    rows, columns = matrix_t.shape
    if columns % gates:
        raise ValueError(f"{columns} columns do not split into {gates} gates")
    width = columns // gates
    padded_width = -(-width // PANEL) * PANEL
    kp = -(-rows // K_MULTIPLE) * K_MULTIPLE
    matrix_t = matrix_t.detach().float()
    padded = torch.zeros(kp, gates, padded_width)
    padded[:rows, :, :width] = matrix_t.reshape(rows, gates, width)
    padded = padded.reshape(kp, gates * padded_width)
    panels = gates * padded_width // PANEL
    empty_f, empty_i = torch.empty(0), torch.empty(0, dtype=torch.int32)

    def as_panels(values: torch.Tensor, group: int) -> torch.Tensor:
        # (kp, panels * 32) -> (panels, kp / group, 32, group): ``group`` consecutive k of a column side by side
        shaped = values.reshape(kp // group, group, panels, PANEL).permute(2, 0, 3, 1).contiguous()
        return shaped.reshape(panels, kp, PANEL) if group == 1 else shaped

    if precision == "float32":
        return PackedMatrix(as_panels(padded, 1), empty_f, empty_i, matrix_t.contiguous(), None)
    if precision == "bfloat16":
        rounded = padded.to(torch.bfloat16)
        weight = as_panels(rounded, 2 if isa == "amx" else 1)
        return PackedMatrix(weight, empty_f, empty_i, matrix_t.to(torch.bfloat16).float().contiguous(), None)
    integers, scales = quantize_columns(padded)
    vnni = isa in ("amx", "avx512")
    colsum = integers.int().sum(dim=0, dtype=torch.int32).contiguous() if vnni else empty_i
    logical = integers.reshape(kp, gates, padded_width)[:rows, :, :width].reshape(rows, columns)
    logical_scale = scales.reshape(gates, padded_width)[:, :width].reshape(columns)
    return PackedMatrix(
        as_panels(integers, 4 if vnni else 1), scales.contiguous(), colsum, logical.float().contiguous(), logical_scale
    )


def available_isas(kernel: ModuleType | None) -> list[str]:
    """The instruction sets the generation kernel can use here, best first: compiled into ``kernel`` and
    present on this CPU (``vcframe.cpu.cpu_flags``, which honours ``VCFRAME_CPU_DISABLE``)."""
    from vcframe.cpu import cpu_flags

    if kernel is None:
        return []
    compiled = set(kernel.generation_isas())
    flags = cpu_flags()
    needs = {
        "amx": ("amx_tile", "avx512f", "avx512bw", "avx512vl", "avx512dq"),
        "avx512": ("avx512f", "avx512bw", "avx512vl", "avx512dq"),
        "avx2": ("avx2", "fma"),
        "generic": (),
    }
    return [isa for isa in ISAS if isa in compiled and all(flag in flags for flag in needs[isa])]


def choose_isa(kernel: ModuleType | None, requested: str, precision: str) -> str:
    """The instruction set the kernel runs ``precision`` with: ``requested`` ('auto': the best; the environment
    variable ``VCFRAME_WAVERNN_ISA`` overrides 'auto') where this CPU and build have it and it serves the precision,
    else the next one down (AMX: bfloat16 needs amx_bf16, int8 amx_int8, float32 has no AMX path; int8 on AVX-512
    needs avx512_vnni)."""
    from vcframe.cpu import cpu_flags

    if requested == "auto":
        requested = os.environ.get("VCFRAME_WAVERNN_ISA", "").strip().lower() or ISAS[0]
    if requested not in ISAS:
        raise ValueError(f"instruction set must be 'auto' or one of {ISAS}, got {requested!r}")
    flags = cpu_flags()
    available = available_isas(kernel)
    serves = {
        "amx": (precision == "bfloat16" and "amx_bf16" in flags) or (precision == "int8" and "amx_int8" in flags),
        "avx512": precision != "int8" or "avx512_vnni" in flags,
        "avx2": True,
        "generic": True,
    }
    for isa in ISAS[ISAS.index(requested) :]:
        if isa in available and serves[isa]:
            return isa
    return "generic"


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
        "\0".join([CPP_SOURCE + TRAINING_SOURCE + GENERATION_SOURCE, *installation, " ".join(flags)]).encode()
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
                # torch leaves load_inline unannotated
                module = load_inline(  # type: ignore[no-untyped-call]
                    name=f"vcframe_wavernn_kernel_{key}",
                    cpp_sources=[CPP_SOURCE + TRAINING_SOURCE + GENERATION_SOURCE],
                    functions=[
                        "run_packed_steps",
                        "generation_isas",
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
