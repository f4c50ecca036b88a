// core/tensor.cpp: tensor creation, views, copies and in-place updates (kernels via backend_for).
#include "core/tensor.h"

#include <sstream>

#include "core/backend.h"
#include "core/device.h"

namespace scconv {

// ---- creation ------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape)
    SCCONV_CHECK(s >= 0, "Tensor::empty: negative size in shape " << shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(numel_of(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype, MemoryFormat format) {
  Tensor t = empty(shape, dtype, Device::CPU, format);
  t.impl_->storage = std::make_shared<Storage>(numel_of(shape) * dtype_size(dtype), Device::CPU, true);
  return t;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device, MemoryFormat format) {
  Tensor t = empty(shape, dtype, device);
  if (format == MemoryFormat::ChannelsLast) t.impl_->strides = strides_for(shape, format);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device, MemoryFormat format) {
  Tensor t = empty(shape, dtype, device, format);
  backend_for(device).fill(t, 0.0);
  return t;
}
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  backend_for(device).fill(t, value);
  return t;
}
Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

// ---- metadata ------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "Tensor::size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

bool Tensor::is_contiguous(MemoryFormat format) const {
  if (format == MemoryFormat::Contiguous) return is_contiguous();
  if (dim() != 4) return false;
  int64_t expected = 1;
  for (int64_t d : {1, 3, 2, 0}) {  // innermost first: C, W, H, N
    if (shape()[d] == 1) continue;
    if (strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

MemoryFormat Tensor::suggest_memory_format() const {
  const bool cl = dim() == 4 && size(1) > 1 && size(2) * size(3) > 1 && strides()[1] == 1 &&
                  strides()[3] >= size(1) && strides()[2] >= strides()[3] && strides()[0] >= strides()[2];
  return cl ? MemoryFormat::ChannelsLast : MemoryFormat::Contiguous;
}

MemoryFormat output_memory_format(const Shape& shape, std::initializer_list<const Tensor*> inputs) {
  for (const Tensor* t : inputs)
    if (t->defined() && t->shape() == shape && t->suggest_memory_format() == MemoryFormat::ChannelsLast)
      return MemoryFormat::ChannelsLast;
  return MemoryFormat::Contiguous;
}

std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape());
}

void check_host_access(const Tensor& t, const char* what) {
  SCCONV_CHECK(t.device() == Device::CPU, what << " on a " << t.str() << " tensor on " << device_name(t.device())
                                               << ": its memory is not on the host; copy it with to(Device::CPU) first");
}

void* Tensor::raw_device_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
}

void* Tensor::raw_data() {
  check_host_access(*this, "raw_data()");
  return static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
}
const void* Tensor::raw_data() const {
  check_host_access(*this, "raw_data()");
  return static_cast<const char*>(impl().storage->data()) + impl().offset * dtype_size(dtype());
}

double Tensor::item() const {
  SCCONV_CHECK(numel() == 1, "item(): tensor " << str() << " has " << numel() << " elements");
  check_host_access(*this, "item()");
  return SCCONV_DISPATCH_ALL(dtype(), "item", [&] {
    return static_cast<double>(*static_cast<const scalar_t*>(raw_data()));
  });
}

// ---- views and copies ------------------------------------------------------------------------

Tensor Tensor::as_strided(const Shape& shape, const Strides& strides, int64_t offset) const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = this->impl().storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype();
  // Bounds: the furthest element must lie inside the storage.
  int64_t last = offset;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) { last = offset; break; }
    last += (shape[i] - 1) * strides[i];
  }
  SCCONV_CHECK(offset >= 0 && (numel_of(shape) == 0 ||
                               (last + 1) * static_cast<int64_t>(dtype_size(dtype())) <=
                                   static_cast<int64_t>(impl->storage->bytes())),
               "as_strided: view " << shape_str(shape) << " at offset " << offset
                                   << " runs past the storage of " << str());
  return Tensor(std::move(impl));
}

Tensor Tensor::view(const Shape& shape_in) const {
  Shape shape = shape_in;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      SCCONV_CHECK(infer < 0, "view: more than one -1 in " << shape_str(shape_in));
      infer = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    SCCONV_CHECK(known > 0 && numel() % known == 0,
                 "view: cannot view " << str() << " as " << shape_str(shape_in));
    shape[infer] = numel() / known;
  }
  SCCONV_CHECK(numel_of(shape) == numel(), "view: cannot view " << str() << " as "
                                                                << shape_str(shape_in));
  SCCONV_CHECK(is_contiguous(), "view: " << str() << " is not contiguous; use reshape");
  return as_strided(shape, contiguous_strides(shape), offset());
}

Tensor Tensor::expand(const Shape& shape) const {
  broadcast_shapes(this->shape(), shape, "expand");
  SCCONV_CHECK(shape.size() >= this->shape().size(),
               "expand: cannot expand " << str() << " to " << shape_str(shape));
  for (size_t i = 0; i < this->shape().size(); ++i) {
    int64_t s = this->shape()[i], t = shape[shape.size() - this->shape().size() + i];
    SCCONV_CHECK(s == t || s == 1, "expand: cannot expand " << str() << " to " << shape_str(shape));
  }
  return as_strided(shape, broadcast_strides(this->shape(), strides(), shape), offset());
}

Tensor Tensor::slice_view(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  int64_t n = shape()[d];
  SCCONV_CHECK(step >= 1, "slice: step must be >= 1, got " << step);
  SCCONV_CHECK(0 <= start && start <= end && end <= n,
               "slice: range [" << start << ", " << end << ") out of bounds for dim " << d
                                << " of " << str());
  Shape sh = shape();
  Strides st = strides();
  sh[d] = (end - start + step - 1) / step;
  st[d] = strides()[d] * step;
  return as_strided(sh, st, offset() + start * strides()[d]);
}

Tensor Tensor::contiguous() const { return contiguous(MemoryFormat::Contiguous); }

Tensor Tensor::contiguous(MemoryFormat format) const {
  if (is_contiguous(format)) return *this;
  Tensor out = empty(shape(), dtype(), device(), format);
  backend_for(device()).copy(out, *this);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device(), suggest_memory_format());
  backend_for(device()).copy(out, *this);
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = empty(shape(), dt, device());
  backend_for(device()).copy(out, *this);
  return out;
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  const MemoryFormat fmt = suggest_memory_format();
  Tensor src = contiguous(fmt);  // dense, on the source device
  Tensor out = empty(shape(), dtype(), d, fmt);
  const size_t bytes = size_t(numel()) * dtype_size(dtype());
  if (bytes > 0)
    device_runtime(d == Device::CPU ? device() : d)
        .copy_bytes(out.raw_device_data(), d, src.raw_device_data(), device(), bytes, src.storage()->pinned());
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>(this->impl());
  impl->autograd.reset();
  return Tensor(std::move(impl));
}

void Tensor::set_data(const Tensor& src) {
  check_defined(src, "set_data", "src");
  TensorImpl& me = impl();
  me.storage = src.impl().storage;
  me.shape = src.shape();
  me.strides = src.strides();
  me.offset = src.offset();
  me.dtype = src.dtype();
  if (me.autograd) me.autograd->grad.reset();
}

// ---- in-place --------------------------------------------------------------------------------

Tensor& Tensor::fill_(double value) {
  backend_for(device()).fill(*this, value);
  bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_same_device(*this, src, "copy_");
  broadcast_shapes(src.shape(), shape(), "copy_");
  backend_for(device()).copy(*this, src);
  bump_version();
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_same_dtype(*this, other, "add_");
  SCCONV_CHECK(other.shape() == shape(), "add_: shape " << other.str() << " does not match "
                                                        << str());
  backend_for(device()).axpy(*this, other, alpha);
  bump_version();
  return *this;
}

Tensor& Tensor::mul_(double value) {
  backend_for(device()).scale(*this, value);
  bump_version();
  return *this;
}

// ---- autograd state --------------------------------------------------------------------------

AutogradMeta& Tensor::ensure_autograd_meta() {
  if (!impl().autograd) impl().autograd = std::make_shared<AutogradMeta>();
  return *impl().autograd;
}

Tensor& Tensor::set_requires_grad(bool on) {
  if (on) check_float(*this, "set_requires_grad", "tensor");
  SCCONV_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad ("
                              << str() << " was produced by an op)");
  ensure_autograd_meta().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  if (!impl().autograd || !impl().autograd->grad) return Tensor();
  return Tensor(impl().autograd->grad);
}

void Tensor::set_grad(const Tensor& g) {
  if (g.defined())
    SCCONV_CHECK(g.shape() == shape(), "set_grad: gradient " << g.str() << " for tensor " << str());
  ensure_autograd_meta().grad = g.defined() ? g.impl_shared() : nullptr;
}

// ---- checks ----------------------------------------------------------------------------------

void check_defined(const Tensor& t, const char* op, const char* arg) {
  SCCONV_CHECK(t.defined(), op << ": argument '" << arg << "' is an undefined tensor");
}
void check_float(const Tensor& t, const char* op, const char* arg) {
  check_defined(t, op, arg);
  SCCONV_CHECK(is_floating(t.dtype()), op << ": argument '" << arg << "' must be float32 or "
                                          << "float64, got " << t.str());
}
void check_dim(const Tensor& t, int64_t ndim, const char* op, const char* arg) {
  check_defined(t, op, arg);
  SCCONV_CHECK(t.dim() == ndim, op << ": argument '" << arg << "' must have " << ndim
                                   << " dims, got " << t.str());
}
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  SCCONV_CHECK(a.dtype() == b.dtype(), op << ": dtype mismatch: " << a.str() << " vs " << b.str());
}
void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  SCCONV_CHECK(a.device() == b.device(), op << ": device mismatch: " << a.str() << " on "
                                            << device_name(a.device()) << " vs " << b.str()
                                            << " on " << device_name(b.device()));
}

}  // namespace scconv
