// core/cpu/dnnl.cpp: matmul and conv2d (forward, backward-data, backward-weights) through
// oneDNN, the CPU counterpart of cuDNN. Float32 only: float64 tensors (gradient checks) run
// the reference loops of core/reference/linalg.cpp. One exception: the backward-data pass of
// channels-last convolutions with 4 or 8 input channels runs our kernel (conv_narrow.cpp).
//
// Activations come in one of our two layouts. Channels-last (NHWC) ones are handed to oneDNN as
// they are: its NHWC convolutions (brgconv / jit:avx512_core) read and write our buffers with no
// reorder, and the output is channels-last too. Row-major NCHW ones go to a primitive created
// with format `any` (oneDNN's blocked layout), reordered in and out. Weights (OIHW / GOIHW) are
// reordered to the primitive's layout on each call (they change every step; they are small).
//
// Winograd (ConvAlgorithm in core/backend.h): oneDNN's F(4x4, 3x3) kernels (jit_wino_4x3) work
// in its blocked layout only, so their activations are reordered in and out; at >= 32 channels
// the reorders cost ~0.05 ms against ~3 ms saved per pass (measured, batch 128, 2 threads).
// Float32 only: bf16 convolutions run direct.
// Primitives and reorders are cached by shape, layout and parameters (one cache per process,
// guarded by a mutex); a training step therefore builds them once.
//
// Precision::BFloat16 (core/dtype.h): each pass's primitive takes its two multiplied operands in
// bf16 and writes float32 (forward y, backward-data grad_x, backward-weights grad_w and grad_b);
// our float32 tensors are rounded into bf16 buffers by the same Reorder that changes layouts.
// Where this CPU has no native bf16 (cpu_bf16_available()), or oneDNN declines a shape, or the
// shape is in the table of bf16_slower() (measured slower than float32 here), that pass runs
// float32. The reference (core/reference/linalg.cpp) defines the result: operands rounded to
// bf16, products summed.
#include <atomic>
#include <dnnl.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "core/cpu/conv_narrow.h"
#include "core/cpu/cpu_backend.h"

namespace scconv {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

memory user_mem(const memory::desc& md, const Tensor& t) {
  return memory(md, engine(), const_cast<void*>(t.raw_data()));
}

// Buffers in a primitive's own layout come from our caching allocator, as float tensors kept
// alive until the end of the call (ScratchScope): a buffer that oneDNN allocates is fresh pages,
// faulted in on every call.
std::vector<Tensor>& scratch_tensors() {
  thread_local std::vector<Tensor> v;
  return v;
}
struct ScratchScope {
  ~ScratchScope() { scratch_tensors().clear(); }
};
memory scratch(const memory::desc& md) {
  Tensor t = Tensor::empty({int64_t((md.get_size() + sizeof(float) - 1) / sizeof(float))}, DType::F32);
  memory m(md, engine(), t.raw_data());
  scratch_tensors().push_back(std::move(t));
  return m;
}

// A reorder between a user (plain) layout and the layout a primitive wants, built on first use.
struct Reorder {
  std::unique_ptr<dnnl::reorder> prim;
  // Returns `user` itself when the layouts agree, else a new buffer in `want` filled from user.
  memory in(memory user, const memory::desc& want) {
    if (user.get_desc() == want) return user;
    memory m = scratch(want);
    if (!prim) prim = std::make_unique<dnnl::reorder>(user, m);
    prim->execute(stream(), user, m);
    return m;
  }
  // Copies `m` (primitive layout) back into `user` when they differ.
  void out(memory m, memory user) {
    if (user.get_desc() == m.get_desc()) return;
    if (!prim) prim = std::make_unique<dnnl::reorder>(m, user);
    prim->execute(stream(), m, user);
  }
  // A buffer in the primitive's layout for an output (no data moved).
  static memory buffer(const memory& user, const memory::desc& want) {
    return user.get_desc() == want ? user : scratch(want);
  }
};

// ---- convolution -------------------------------------------------------------------------------

struct ConvEntry {
  bool nhwc = false;
  bool winograd = false;
  // the multiplied operands' type of each pass (bf16 or f32; the outputs are always f32)
  dt fwd_dt = dt::f32, bwd_data_dt = dt::f32, bwd_w_dt = dt::f32;
  dnnl::algorithm algo = dnnl::algorithm::convolution_direct;
  memory::desc x_md, w_md, b_md, y_md;  // plain layouts of our tensors
  memory::dims strides, dilates, pad_l, pad_r;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  std::unique_ptr<dnnl::convolution_forward> fwd;
  std::unique_ptr<dnnl::convolution_backward_data> bwd_data;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  std::unique_ptr<dnnl::convolution_backward_weights> bwd_w;
  dnnl::convolution_backward_weights::primitive_desc bwd_w_pd;
  Reorder fwd_x, fwd_w, fwd_y, bd_gy, bd_w, bd_gx, bw_x, bw_gy, bw_gw;
  std::mutex lock;  // primitives are shared; serialise their lazy creation and execution
};

memory::desc any(const memory::desc& md, dt type = dt::f32) { return memory::desc(md.dims(), type, tag::any); }
// The activation layout a primitive is created with: ours when channels-last, else oneDNN's choice.
struct ConvEntry;
memory::desc act_desc(const ConvEntry& e, const memory::desc& md, dt type = dt::f32);

std::string conv_key(const Shape& x, const Shape& w, bool bias, bool nhwc, const Conv2dParams& p) {
  std::ostringstream os;
  os << conv_algorithm_name(conv_algorithm()) << shape_str(x) << shape_str(w) << bias << nhwc << p.stride[0] << ',' << p.stride[1] << ','
     << p.padding[0] << ',' << p.padding[1] << ',' << p.dilation[0] << ',' << p.dilation[1] << ','
     << p.groups << precision_name(p.precision);
  return os.str();
}

using cpu::ConvPass;
std::atomic<bool> g_bf16_table{true};

// The operand type a pass asks oneDNN for.
dt pass_type(const ConvDims& d, const Conv2dParams& p, ConvPass pass) {
  if (p.precision != Precision::BFloat16 || !cpu_bf16_available()) return dt::f32;
  return g_bf16_table.load() && cpu::bf16_slower(d, p, pass) ? dt::f32 : dt::bf16;
}

// make(type) builds a pass's primitive descriptor; a bf16 one that oneDNN declines is built f32.
template <class Make>
auto with_f32_fallback(dt& type, Make make) -> decltype(make(type)) {
  if (type == dt::f32) return make(type);
  try {
    return make(type);
  } catch (const dnnl::error&) {
    type = dt::f32;
    return make(type);
  }
}

// Whether to ask oneDNN for Winograd (see ConvAlgorithm in core/backend.h).
bool want_winograd(const Shape& xs, const Shape& ws, const Conv2dParams& p) {
  const ConvAlgorithm a = conv_algorithm();
  if (a == ConvAlgorithm::Direct) return false;
  const bool three_by_three = ws[2] == 3 && ws[3] == 3 && p.stride[0] == 1 && p.stride[1] == 1 &&
                              p.dilation[0] == 1 && p.dilation[1] == 1 && p.groups == 1;
  if (a == ConvAlgorithm::Winograd) return three_by_three;
  return three_by_three && xs[1] >= 32 && ws[0] >= 32;
}

ConvEntry& conv_entry(const Shape& xs, const Shape& ws, bool bias, bool nhwc, const Conv2dParams& p) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<ConvEntry>> cache;
  std::lock_guard<std::mutex> g(mu);
  auto& slot = cache[conv_key(xs, ws, bias, nhwc, p)];
  if (slot) return *slot;
  auto e = std::make_unique<ConvEntry>();
  e->nhwc = nhwc;
  const ConvDims d = conv_dims(xs, ws, p);
  const int64_t G = d.G, O = d.O, OH = d.OH, OW = d.OW;
  const tag act = nhwc ? tag::nhwc : tag::nchw;
  e->x_md = memory::desc({xs[0], xs[1], xs[2], xs[3]}, dt::f32, act);
  e->y_md = memory::desc({xs[0], O, OH, OW}, dt::f32, act);
  e->w_md = G == 1 ? memory::desc({ws[0], ws[1], ws[2], ws[3]}, dt::f32, tag::oihw)
                   : memory::desc({G, O / G, ws[1], ws[2], ws[3]}, dt::f32, tag::goihw);
  if (bias) e->b_md = memory::desc({O}, dt::f32, tag::x);
  e->strides = {p.stride[0], p.stride[1]};
  e->dilates = {p.dilation[0] - 1, p.dilation[1] - 1};
  e->pad_l = {p.padding[0], p.padding[1]};
  // Right padding so that the output size matches the formula exactly.
  e->pad_r = {(OH - 1) * p.stride[0] + (ws[2] - 1) * p.dilation[0] + 1 - xs[2] - p.padding[0],
              (OW - 1) * p.stride[1] + (ws[3] - 1) * p.dilation[1] + 1 - xs[3] - p.padding[1]};
  auto make_pd = [&] {
    e->fwd_pd = with_f32_fallback(e->fwd_dt, [&](dt type) {
      dnnl::convolution_forward::desc fd(dnnl::prop_kind::forward_training, e->algo,
                                         act_desc(*e, e->x_md, type), any(e->w_md, type), e->b_md,
                                         act_desc(*e, e->y_md), e->strides, e->dilates, e->pad_l,
                                         e->pad_r);
      return dnnl::convolution_forward::primitive_desc(fd, engine());
    });
  };
  e->fwd_dt = pass_type(d, p, ConvPass::Forward);
  e->bwd_data_dt = pass_type(d, p, ConvPass::BackwardData);
  e->bwd_w_dt = pass_type(d, p, ConvPass::BackwardWeights);
  if (p.precision == Precision::Float32 && want_winograd(xs, ws, p)) {
    try {  // oneDNN declines shapes its Winograd kernels do not cover: then direct
      e->winograd = true;
      e->algo = dnnl::algorithm::convolution_winograd;
      make_pd();
    } catch (const dnnl::error&) {
      e->winograd = false;
      e->algo = dnnl::algorithm::convolution_direct;
    }
  }
  if (!e->winograd) make_pd();
  e->fwd = std::make_unique<dnnl::convolution_forward>(e->fwd_pd);
  slot = std::move(e);
  return *slot;
}

memory::desc act_desc(const ConvEntry& e, const memory::desc& md, dt type) {
  return e.nhwc && !e.winograd ? memory::desc(md.dims(), type, tag::nhwc) : any(md, type);
}

// A backward primitive descriptor with the forward's algorithm, or direct when oneDNN has no
// Winograd kernel for that pass (the layouts stay oneDNN's choice either way).
template <class Make>
auto with_direct_fallback(const ConvEntry& e, Make make) -> decltype(make(e.algo)) {
  if (!e.winograd) return make(e.algo);
  try {
    return make(e.algo);
  } catch (const dnnl::error&) {
    return make(dnnl::algorithm::convolution_direct);
  }
}

// Channels-last when any activation operand is: then all of them are made channels-last.
bool use_nhwc(std::initializer_list<const Tensor*> acts) {
  for (const Tensor* t : acts)
    if (t->suggest_memory_format() == MemoryFormat::ChannelsLast) return true;
  return false;
}
MemoryFormat act_format(bool nhwc) { return nhwc ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous; }

// oneDNN's primitives are not defined for zero-size tensors (an empty batch divides by zero
// inside them): those go to the reference loops, which then do no work.
bool any_empty(std::initializer_list<int64_t> numels) {
  for (int64_t n : numels)
    if (n == 0) return true;
  return false;
}

}  // namespace

// Measured with bench_bf16_conv (batch 128, channels-last, 2 threads, a Xeon with AMX; the table
// in docs/performance.md): bf16 is 1.3-4.5x faster for forward and backward-data of ungrouped
// convolutions with >= 27 multiplies per output (the stem's 3x3x3 up), and slower (0.6-0.85x)
// below that and for grouped ones (the CRU's GWC and PWC: converting the operands costs more
// than the multiplies save). Backward-weights in bf16 only gains on 3x3 convolutions with >= 16
// input channels per group and >= 16x16 outputs (1.05-1.8x); elsewhere it is 0.3-0.9x.
bool cpu::bf16_slower(const ConvDims& d, const Conv2dParams& p, ConvPass pass) {
  (void)p;
  const int64_t taps = d.Cg * d.KH * d.KW;
  if (d.G != 1 || taps < 27) return true;
  if (pass != ConvPass::BackwardWeights) return false;
  return !(d.KH * d.KW > 1 && d.Cg >= 16 && d.OH * d.OW >= 256);
}
void cpu::set_bf16_table_enabled(bool on) { g_bf16_table.store(on); }

Tensor CpuBackend::conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& bias,
                          const Conv2dParams& p) {
  if (x_in.dtype() != DType::F32 || any_empty({x_in.numel(), w_in.numel()}))  // in the input's layout, like the float32 path
    return ReferenceBackend::conv2d(x_in, w_in, bias, p).contiguous(x_in.suggest_memory_format());
  ScratchScope scratch_scope;
  const bool nhwc = use_nhwc({&x_in});
  Tensor x = x_in.contiguous(act_format(nhwc)), w = w_in.contiguous(),
         b = bias.defined() ? bias.contiguous() : bias;
  ConvEntry& e = conv_entry(x.shape(), w.shape(), b.defined(), nhwc, p);
  Tensor y = Tensor::empty(e.y_md.dims(), DType::F32, Device::CPU, act_format(nhwc));
  std::lock_guard<std::mutex> g(e.lock);
  memory xu = user_mem(e.x_md, x), wu = user_mem(e.w_md, w), yu = user_mem(e.y_md, y);
  memory xm = e.fwd_x.in(xu, e.fwd_pd.src_desc());
  memory wm = e.fwd_w.in(wu, e.fwd_pd.weights_desc());
  memory ym = Reorder::buffer(yu, e.fwd_pd.dst_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}};
  if (b.defined()) args[DNNL_ARG_BIAS] = user_mem(e.b_md, b);
  e.fwd->execute(stream(), args);
  e.fwd_y.out(ym, yu);
  stream().wait();
  return y;
}

Tensor CpuBackend::conv2d_backward_data(const Tensor& grad_y_in, const Tensor& w_in,
                                        const Shape& x_shape, const Conv2dParams& p) {
  const bool nhwc = use_nhwc({&grad_y_in});
  // 4 or 8 input channels, channels-last: our kernel (conv_narrow.cpp; float32 and float64)
  if (nhwc && cpu::narrow_backward_data_applies(x_shape, w_in.shape(), p))
    return cpu::narrow_conv_backward_data(grad_y_in, w_in, x_shape, p);
  if (grad_y_in.dtype() != DType::F32 || any_empty({grad_y_in.numel(), w_in.numel(), numel_of(x_shape)}))
    return ReferenceBackend::conv2d_backward_data(grad_y_in, w_in, x_shape, p);
  ScratchScope scratch_scope;
  Tensor gy = grad_y_in.contiguous(act_format(nhwc)), w = w_in.contiguous();
  ConvEntry& e = conv_entry(x_shape, w.shape(), /*bias=*/false, nhwc, p);
  std::lock_guard<std::mutex> g(e.lock);
  if (!e.bwd_data) {
    e.bwd_data_pd = with_f32_fallback(e.bwd_data_dt, [&](dt type) {
      return with_direct_fallback(e, [&](dnnl::algorithm algo) {
        dnnl::convolution_backward_data::desc bd(algo, act_desc(e, e.x_md), any(e.w_md, type),
                                                 act_desc(e, e.y_md, type), e.strides, e.dilates,
                                                 e.pad_l, e.pad_r);
        return dnnl::convolution_backward_data::primitive_desc(bd, engine(), e.fwd_pd);
      });
    });
    e.bwd_data = std::make_unique<dnnl::convolution_backward_data>(e.bwd_data_pd);
  }
  Tensor gx = Tensor::empty(x_shape, DType::F32, Device::CPU, act_format(nhwc));
  memory gyu = user_mem(e.y_md, gy), wu = user_mem(e.w_md, w), gxu = user_mem(e.x_md, gx);
  memory gym = e.bd_gy.in(gyu, e.bwd_data_pd.diff_dst_desc());
  memory wm = e.bd_w.in(wu, e.bwd_data_pd.weights_desc());
  memory gxm = Reorder::buffer(gxu, e.bwd_data_pd.diff_src_desc());
  e.bwd_data->execute(stream(), {{DNNL_ARG_DIFF_DST, gym}, {DNNL_ARG_WEIGHTS, wm},
                                 {DNNL_ARG_DIFF_SRC, gxm}});
  e.bd_gx.out(gxm, gxu);
  stream().wait();
  return gx;
}

std::pair<Tensor, Tensor> CpuBackend::conv2d_backward_weights(const Tensor& grad_y_in,
                                                              const Tensor& x_in,
                                                              const Shape& w_shape, bool want_bias,
                                                              const Conv2dParams& p) {
  if (grad_y_in.dtype() != DType::F32 || any_empty({grad_y_in.numel(), x_in.numel(), numel_of(w_shape)}))
    return ReferenceBackend::conv2d_backward_weights(grad_y_in, x_in, w_shape, want_bias, p);
  ScratchScope scratch_scope;
  const bool nhwc = use_nhwc({&grad_y_in, &x_in});
  Tensor gy = grad_y_in.contiguous(act_format(nhwc)), x = x_in.contiguous(act_format(nhwc));
  ConvEntry& e = conv_entry(x.shape(), w_shape, want_bias, nhwc, p);
  std::lock_guard<std::mutex> g(e.lock);
  if (!e.bwd_w) {
    e.bwd_w_pd = with_f32_fallback(e.bwd_w_dt, [&](dt type) {
      return with_direct_fallback(e, [&](dnnl::algorithm algo) {
        // bf16: oneDNN would sum the rounded grad_y into grad_b; we sum the float32 one (below)
        const memory::desc b_md = type == dt::bf16 ? memory::desc() : e.b_md;
        dnnl::convolution_backward_weights::desc wd(algo, act_desc(e, e.x_md, type), any(e.w_md),
                                                    b_md, act_desc(e, e.y_md, type), e.strides,
                                                    e.dilates, e.pad_l, e.pad_r);
        return dnnl::convolution_backward_weights::primitive_desc(wd, engine(), e.fwd_pd);
      });
    });
    e.bwd_w = std::make_unique<dnnl::convolution_backward_weights>(e.bwd_w_pd);
  }
  Tensor gw = Tensor::empty(w_shape, DType::F32), gb;
  memory xu = user_mem(e.x_md, x), gyu = user_mem(e.y_md, gy), gwu = user_mem(e.w_md, gw);
  memory xm = e.bw_x.in(xu, e.bwd_w_pd.src_desc());
  memory gym = e.bw_gy.in(gyu, e.bwd_w_pd.diff_dst_desc());
  memory gwm = Reorder::buffer(gwu, e.bwd_w_pd.diff_weights_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, gym},
                                       {DNNL_ARG_DIFF_WEIGHTS, gwm}};
  const bool bias_here = want_bias && e.bwd_w_dt == dt::f32;
  if (bias_here) {
    gb = Tensor::empty({w_shape[0]}, DType::F32);
    args[DNNL_ARG_DIFF_BIAS] = user_mem(e.b_md, gb);
  }
  e.bwd_w->execute(stream(), args);
  e.bw_gw.out(gwm, gwu);
  stream().wait();
  if (want_bias && !bias_here) gb = sum(gy, {0, 2, 3}, false);  // (C): float32, as the reference
  return {gw, gb};
}

// ---- matmul ------------------------------------------------------------------------------------

Tensor CpuBackend::matmul(const Tensor& a_in, const Tensor& b_in, bool trans_a, bool trans_b,
                          Precision precision) {
  if (a_in.dtype() != DType::F32 || any_empty({a_in.numel(), b_in.numel()}))
    return ReferenceBackend::matmul(a_in, b_in, trans_a, trans_b, precision);
  ScratchScope scratch_scope;
  Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const int64_t M = trans_a ? a.size(1) : a.size(0), K = trans_a ? a.size(0) : a.size(1);
  const int64_t N = trans_b ? b.size(0) : b.size(1);
  Tensor y = Tensor::empty({M, N}, DType::F32);
  // A transposed operand is the same buffer read with swapped strides.
  const memory::dims a_strides = trans_a ? memory::dims{1, M} : memory::dims{K, 1};
  const memory::dims b_strides = trans_b ? memory::dims{1, K} : memory::dims{N, 1};
  memory::desc a_md({M, K}, dt::f32, a_strides), b_md({K, N}, dt::f32, b_strides);
  memory::desc y_md({M, N}, dt::f32, tag::ab);
  struct MatmulEntry {
    std::unique_ptr<dnnl::matmul> prim;
    dnnl::matmul::primitive_desc pd;
    Reorder a_in, b_in;  // f32 -> bf16 (same strides) when the matmul multiplies in bf16
    std::mutex lock;
  };
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<MatmulEntry>> cache;
  MatmulEntry* e;
  {
    std::ostringstream key;
    key << M << ',' << K << ',' << N << ',' << trans_a << trans_b << precision_name(precision);
    std::lock_guard<std::mutex> g(mu);
    auto& slot = cache[key.str()];
    if (!slot) {
      slot = std::make_unique<MatmulEntry>();
      dt type = precision == Precision::BFloat16 && cpu_bf16_available() ? dt::bf16 : dt::f32;
      slot->pd = with_f32_fallback(type, [&](dt t) {
        // bf16 operands in plain row-major (the reorder that rounds them also transposes them)
        memory::desc am = t == dt::f32 ? a_md : memory::desc({M, K}, t, tag::ab);
        memory::desc bm = t == dt::f32 ? b_md : memory::desc({K, N}, t, tag::ab);
        return dnnl::matmul::primitive_desc(dnnl::matmul::desc(am, bm, y_md), engine());
      });
      slot->prim = std::make_unique<dnnl::matmul>(slot->pd);
    }
    e = slot.get();
  }
  std::lock_guard<std::mutex> g(e->lock);
  e->prim->execute(stream(), {{DNNL_ARG_SRC, e->a_in.in(user_mem(a_md, a), e->pd.src_desc())},
                              {DNNL_ARG_WEIGHTS, e->b_in.in(user_mem(b_md, b), e->pd.weights_desc())},
                              {DNNL_ARG_DST, user_mem(y_md, y)}});
  stream().wait();
  return y;
}

bool cpu_bf16_available() {
  static const bool ok = [] {
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    return isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
  }();
  return ok;
}

bool cpu_winograd_available() {
  static const bool ok = [] {  // oneDNN's answer for a shape its kernels cover (32 -> 48 3x3)
    using tag = memory::format_tag;
    using dt = memory::data_type;
    const memory::desc x({1, 32, 16, 16}, dt::f32, tag::any), w({48, 32, 3, 3}, dt::f32, tag::any),
        y({1, 48, 16, 16}, dt::f32, tag::any);
    try {
      dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_winograd, x, w,
                                        y, {1, 1}, {1, 1}, {1, 1});
      dnnl::convolution_forward::primitive_desc pd(d, engine());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return ok;
}

}  // namespace scconv
