// core/shape.h: shapes and strides (in elements), and the helpers every op uses on them:
// element counts, contiguous strides, broadcasting, dim wrapping and printing.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace scconv {

using Shape = std::vector<int64_t>;
using Strides = std::vector<int64_t>;

int64_t numel_of(const Shape& shape);
// The product of the sizes of dims [from, ndim): e.g. numel_from(x, 2), the spatial size of
// (N, C, H, W). Computed as a product, not numel / leading sizes, so it holds when N = 0.
int64_t numel_from(const Shape& shape, size_t from);
Strides contiguous_strides(const Shape& shape);

// The two dense layouts of a 4-D (N, C, H, W) tensor. Contiguous: row-major NCHW. ChannelsLast:
// NHWC in memory (channels innermost) with the logical shape still (N, C, H, W), as PyTorch's
// torch.channels_last; oneDNN's convolutions read and write it without reorders. Ops give an
// output the layout of their activation input (Tensor::suggest_memory_format).
enum class MemoryFormat : uint8_t { Contiguous, ChannelsLast };
Strides strides_for(const Shape& shape, MemoryFormat format);  // ChannelsLast: 4-D only
std::string shape_str(const Shape& shape);  // "(128, 16, 32, 32)"
// Wraps a possibly negative dim into [0, ndim); errors name `op`.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
// NumPy/PyTorch broadcasting of two shapes; errors name `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Strides that read `shape` as if it had shape `target` (stride 0 on broadcast dims).
Strides broadcast_strides(const Shape& shape, const Strides& strides, const Shape& target);

// A tensor seen as (outer, n, inner) around `dim`: element (o, k, i) is at (o * n + k) * inner + i
// of a contiguous tensor. Softmax-like ops loop over it.
struct AroundDim {
  int64_t outer = 1, n = 1, inner = 1;
};
AroundDim around_dim(const Shape& shape, int64_t dim);

}  // namespace scconv
