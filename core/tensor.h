// core/tensor.h: the tensor. A Tensor is a cheap handle (shared pointer) to an impl holding a
// refcounted Storage, a shape, strides (in elements), an element offset, a dtype and a device.
// Views (slices, expands, reshapes of contiguous data) share storage.
//
// Autograd state (requires_grad, .grad, the node that produced it) hangs off the impl in an
// AutogradMeta; core/ only stores it, autograd/ gives it meaning.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace scconv {

namespace autograd {
struct Node;
}
class Tensor;

struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<class TensorImpl> grad;   // accumulated gradient of a leaf
  std::shared_ptr<autograd::Node> grad_fn;  // the op that produced this tensor (non-leaf)
};

class TensorImpl {
 public:
  std::shared_ptr<Storage> storage;
  Shape shape;
  Strides strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;
  std::shared_ptr<AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor empty(const Shape& shape, DType dtype, Device device, MemoryFormat format);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype, Device device, MemoryFormat format);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32,
                     Device device = Device::CPU);
  static Tensor scalar(double value, DType dtype = DType::F32);  // 0-d tensor
  // A dense CPU tensor in page-locked memory (when a GPU runtime is there; plain memory
  // otherwise): the loader's batches, so that their upload runs asynchronously.
  static Tensor empty_pinned(const Shape& shape, DType dtype, MemoryFormat format = MemoryFormat::Contiguous);
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Strides& strides() const { return impl().strides; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return numel_of(impl().shape); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;                      // row-major (NCHW for 4-D)
  bool is_contiguous(MemoryFormat format) const;   // dense in that layout
  // The layout for outputs shaped like this tensor: ChannelsLast when it is 4-D with channels
  // innermost in memory (a channels-last tensor or a view of one, such as a channel slice) and
  // more than one channel and pixel; Contiguous otherwise.
  MemoryFormat suggest_memory_format() const;
  std::string str() const;  // "float32(128, 16, 32, 32)", for error messages
  TensorImpl* impl_ptr() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_shared() const { return impl_; }
  bool same_impl(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- data access ----
  // Host pointers: a tensor on another device is an Error naming it (copy it with to(Device::CPU)).
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data();
  const void* raw_data() const;
  // The pointer on the tensor's own device, for that device's backend kernels.
  template <class T> T* device_data();
  template <class T> const T* device_data() const;
  void* raw_device_data() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  uint64_t version() const { return impl().storage->version(); }
  void bump_version() { impl().storage->bump_version(); }
  double item() const;                 // value of a one-element CPU tensor, as double
  template <class T> std::vector<T> to_vector() const;  // a host copy (from any device), in logical order

  // ---- views and copies (no autograd; see autograd/ for differentiable versions) ----
  Tensor as_strided(const Shape& shape, const Strides& strides, int64_t offset) const;
  Tensor view(const Shape& shape) const;  // contiguous tensors only; one dim may be -1
  Tensor expand(const Shape& shape) const;  // broadcast view with stride 0
  Tensor slice_view(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor contiguous() const;  // itself when already contiguous
  Tensor contiguous(MemoryFormat format) const;  // itself when already dense in that layout
  Tensor clone() const;  // a copy in the same layout (dense NCHW, or channels-last if this suggests it)
  Tensor to(DType dtype) const;
  // A copy on `device` in the same layout (itself when already there). Uploads from pinned
  // memory are asynchronous; downloads wait for the device's queued work.
  Tensor to(Device device) const;
  Tensor detach() const;  // shares storage, no autograd state

  // Makes this tensor (and every handle sharing its impl) refer to `src`'s data, shape and
  // dtype, keeping its autograd state: how a module converts its parameters in place.
  void set_data(const Tensor& src);

  // ---- in-place (bump the version counter) ----
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);  // src broadcast to this shape; dtypes may differ
  Tensor& add_(const Tensor& other, double alpha = 1.0);  // this += alpha * other
  Tensor& mul_(double value);

  // ---- autograd state ----
  bool requires_grad() const { return impl().autograd && impl().autograd->requires_grad; }
  Tensor& set_requires_grad(bool on);
  Tensor grad() const;
  void set_grad(const Tensor& g);
  const std::shared_ptr<AutogradMeta>& autograd_meta() const { return impl().autograd; }
  AutogradMeta& ensure_autograd_meta();
  bool is_leaf() const { return !impl().autograd || !impl().autograd->grad_fn; }

 private:
  TensorImpl& impl() const {
    SCCONV_CHECK(impl_, "use of an undefined tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

// The layout of an op's output of `shape` computed from `inputs`: ChannelsLast when an input of
// that very shape suggests it, else Contiguous (so activations keep their layout through ops).
MemoryFormat output_memory_format(const Shape& shape, std::initializer_list<const Tensor*> inputs);

// ---- checks shared by all ops: they throw Error naming the op and shapes ----
void check_defined(const Tensor& t, const char* op, const char* arg);
void check_float(const Tensor& t, const char* op, const char* arg);
void check_dim(const Tensor& t, int64_t ndim, const char* op, const char* arg);
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);

// ---- template definitions ----
void check_host_access(const Tensor& t, const char* what);  // Error unless t is on the CPU
template <class T>
T* Tensor::device_data() {
  SCCONV_CHECK(dtype_of<T>::value == dtype(), "data<" << dtype_name(dtype_of<T>::value)
                                                      << ">() on a " << str() << " tensor");
  return static_cast<T*>(impl().storage->data()) + impl().offset;
}
template <class T>
const T* Tensor::device_data() const {
  SCCONV_CHECK(dtype_of<T>::value == dtype(), "data<" << dtype_name(dtype_of<T>::value)
                                                      << ">() on a " << str() << " tensor");
  return static_cast<const T*>(impl().storage->data()) + impl().offset;
}
template <class T>
T* Tensor::data() {
  check_host_access(*this, "data()");
  return device_data<T>();
}
template <class T>
const T* Tensor::data() const {
  check_host_access(*this, "data()");
  return device_data<T>();
}
template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  SCCONV_CHECK(static_cast<int64_t>(values.size()) == numel_of(shape),
               "Tensor::from_vector: " << values.size() << " values for shape " << shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>::value);
  std::copy(values.begin(), values.end(), t.data<T>());
  return t;
}
template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = contiguous().to(Device::CPU);
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}

}  // namespace scconv
