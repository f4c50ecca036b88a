// core/cpu/reduce.cpp: fast sum over dims. Kept and reduced dims are each coalesced; each
// output element (in parallel) sums its reduced block with a double accumulator, innermost
// reduced dim in the inner loop. nonfinite_index tests exponent bits (all ones: NaN or Inf) over
// chunks of every tensor in parallel. Reference: core/reference/reduce.cpp.
#include <atomic>
#include <cstring>
#include <type_traits>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/vec.h"
#include "core/parallel.h"

namespace scconv {

Tensor CpuBackend::sum(const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim) {
  Tensor x = x_in.contiguous();
  const int64_t nd = x.dim();
  std::vector<bool> reduced(nd, false);
  for (int64_t d : dims) reduced[wrap_dim(d, nd, "sum")] = true;
  Shape out_shape;
  Shape kept, red;            // coalesced kept / reduced dims, outermost first
  Strides kept_st, red_st;    // their strides in x
  int prev = -1;              // kind of the previous non-trivial dim: 0 kept, 1 reduced
  for (int64_t d = 0; d < nd; ++d) {
    if (!reduced[d] || keepdim) out_shape.push_back(reduced[d] ? 1 : x.shape()[d]);
    if (x.shape()[d] == 1) continue;
    int kind = reduced[d] ? 1 : 0;
    Shape& s = kind ? red : kept;
    Strides& st = kind ? red_st : kept_st;
    if (prev == kind) {  // adjacent dims of one kind in a contiguous tensor merge
      s.back() *= x.shape()[d];
      st.back() = x.strides()[d];
    } else {
      s.push_back(x.shape()[d]);
      st.push_back(x.strides()[d]);
    }
    prev = kind;
  }
  if (red.empty()) { red.push_back(1); red_st.push_back(0); }
  Tensor y = Tensor::empty(out_shape, x.dtype());
  if (x.numel() == 0) return y.fill_(0.0);  // a sum of nothing (and no division by an empty run)
  const int64_t n_out = numel_of(kept), n_red = numel_of(red);
  const int64_t inner = red.back(), inner_st = red_st.back(), outer_red = n_red / inner;
  SCCONV_DISPATCH_FLOAT(x.dtype(), "sum", [&] {
    const scalar_t* X = x.data<scalar_t>();
    scalar_t* Y = y.data<scalar_t>();
    auto sum_block = [&](int64_t base) {  // sum of the reduced block starting at `base`
      double acc = 0;
      for (int64_t r = 0; r < outer_red; ++r) {
        int64_t off = base, rem = r;
        for (int64_t d = static_cast<int64_t>(red.size()) - 2; d >= 0; --d) {
          off += (rem % red[d]) * red_st[d];
          rem /= red[d];
        }
        const scalar_t* p = X + off;
        if (inner_st == 1) {
          acc += cpu::sum_run(p, inner);
        } else {
          for (int64_t i = 0; i < inner; ++i) acc += p[i * inner_st];
        }
      }
      return acc;
    };
    if (n_out == 1) {  // full reduction: split the blocks over threads
      std::vector<double> parts(std::max(1, get_num_threads()), 0.0);
      const int64_t per = (outer_red + parts.size() - 1) / parts.size();
      parallel_for(static_cast<int64_t>(parts.size()), 1, [&](int64_t tb, int64_t te) {
        for (int64_t t = tb; t < te; ++t)
          for (int64_t r = t * per; r < std::min(outer_red, (t + 1) * per); ++r) {
            int64_t off = 0, rem = r;
            for (int64_t d = static_cast<int64_t>(red.size()) - 2; d >= 0; --d) {
              off += (rem % red[d]) * red_st[d];
              rem /= red[d];
            }
            if (inner_st == 1) {
              parts[t] += cpu::sum_run(X + off, inner);
            } else {
              for (int64_t i = 0; i < inner; ++i) parts[t] += X[off + i * inner_st];
            }
          }
      });
      double total = 0;
      for (double v : parts) total += v;
      Y[0] = static_cast<scalar_t>(total);
      return;
    }
    parallel_for(n_out, 1, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        int64_t base = 0, rem = o;
        for (int64_t d = static_cast<int64_t>(kept.size()) - 1; d >= 0; --d) {
          base += (rem % kept[d]) * kept_st[d];
          rem /= kept[d];
        }
        Y[o] = static_cast<scalar_t>(sum_block(base));
      }
    });
  });
  return y;
}

namespace {
// Whether any of n values has all exponent bits set (NaN or +-Inf): integer ops only, so the loop
// vectorises without reassociating float arithmetic.
template <class T>
bool any_nonfinite(const T* p, int64_t n) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  constexpr Bits exp = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, p + i, sizeof b);
    bad |= (b & exp) == exp;
  }
  return bad != 0;
}
}  // namespace

Tensor CpuBackend::nonfinite_index(const std::vector<Tensor>& ts) {
  struct Chunk {
    size_t tensor;
    int64_t begin, end;
  };
  constexpr int64_t kChunk = 1 << 16;
  std::vector<Tensor> dense(ts.size());
  std::vector<Chunk> chunks;
  for (size_t k = 0; k < ts.size(); ++k) {
    if (!is_floating(ts[k].dtype())) continue;
    dense[k] = ts[k].contiguous(ts[k].suggest_memory_format());  // (no copy when already dense)
    for (int64_t b = 0; b < dense[k].numel(); b += kChunk) chunks.push_back({k, b, std::min(b + kChunk, dense[k].numel())});
  }
  std::vector<std::atomic<bool>> bad(ts.size());  // (false)
  // threads only for big models: a ResNet-20's 0.27M values take ~20 us on one thread, less than
  // waking the pool
  const int64_t n_chunks = static_cast<int64_t>(chunks.size());
  const int64_t grain = n_chunks * kChunk < (int64_t(1) << 21) ? std::max<int64_t>(n_chunks, 1) : 4;
  parallel_for(n_chunks, grain, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      const Chunk& ch = chunks[c];
      const Tensor& t = dense[ch.tensor];
      const bool b = t.dtype() == DType::F32 ? any_nonfinite(t.data<float>() + ch.begin, ch.end - ch.begin)
                                             : any_nonfinite(t.data<double>() + ch.begin, ch.end - ch.begin);
      if (b) bad[ch.tensor].store(true, std::memory_order_relaxed);
    }
  });
  for (size_t k = 0; k < ts.size(); ++k)
    if (bad[k]) return Tensor::full({}, double(k), DType::I64);
  return Tensor::full({}, -1.0, DType::I64);
}

}  // namespace scconv
