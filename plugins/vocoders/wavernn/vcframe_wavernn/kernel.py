"""The per-sample generation loop as a small C++ kernel, JIT-compiled once and cached in the user cache dir.

Built with ``torch.utils.cpp_extension.load_inline`` at first use (never at install time: pip's isolated build
environment would fetch a CUDA build of torch). Without a compiler, :func:`load_kernel` returns None and the
caller uses the pure-PyTorch loop of :mod:`vcframe_wavernn.generate`, which computes the same thing.

One call runs ``n_steps`` steps for all folds. Everything that does not depend on the previous sample was
precomputed by the caller as whole-block matrix products; a step is then five small GEMMs (the recurrent
products, rnn2's input and the fc layers, through ATen/MKL into preallocated buffers) and fused loops for
the GRU gates, the residuals, the ReLUs and the sampler. Folds are split in contiguous groups over the
threads (plain ``std::thread``); groups never synchronise, so two cores give close to twice the speed.
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
    return hashlib.sha256("\0".join([CPP_SOURCE, *installation, " ".join(flags)]).encode()).hexdigest()[:16]


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
                    cpp_sources=[CPP_SOURCE],
                    functions=["run_steps"],
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
