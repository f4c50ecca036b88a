// autograd/node.h: the tape. When grad mode is on and an input requires grad, each
// differentiable op records a Node: the op's name, edges to where its inputs' gradients go, the
// tensors it saved, and its backward function (written right beside the forward, in
// autograd/ops_*.cpp). Nodes carry a sequence number in recording order, so sorting them by it
// descending is a reverse topological order: backward() walks the tape that way, iteratively.
//
// Ownership: an output tensor holds its node; a node holds the nodes of its inputs. A graph
// nobody can reach any more frees itself. After backward() a node drops its saved tensors
// and backward function (unless retain_graph), so activations are released.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace scconv::autograd {

// Where the gradient of one input goes: into another node's output gradient, or into the
// .grad of a leaf that requires grad. Neither: the input needs no gradient.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<AutogradMeta> leaf;
  Shape shape;  // the input's shape, to check the gradient backward returns
  bool needed() const { return node || leaf; }
};

// A tensor saved for backward. It remembers the storage version at save time; get() fails if
// the tensor was modified in place since (its gradient would be wrong).
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, const char* op);
  Tensor get() const;
  bool defined() const { return t_.defined(); }
 private:
  Tensor t_;  // detached: saving an op's own output must not make a reference cycle
  uint64_t version_ = 0;
  const char* op_ = "";
};

struct Node {
  uint64_t seq = 0;
  const char* op = "";
  std::vector<Edge> inputs;
  // grad_y -> one gradient per input (undefined where that input needs none).
  std::function<std::vector<Tensor>(const Tensor& grad_y)> backward;
  Tensor grad_y;  // accumulated during a backward pass
  // Whether grad_y is this node's own memory (then later gradients are added into it in place).
  // The first gradient to arrive is taken as it is, shared or not: an input's gradient is often
  // another node's grad_y passed through (add, the identity shortcut), and copying it only to
  // add into the copy later costs a pass over the activations.
  bool grad_y_owned = false;
  bool released = false;
  // Tears down the chain of nodes only this one holds iteratively: a 10^5-op graph must not
  // recurse through nested destructors.
  ~Node();
};

// ---- grad mode -------------------------------------------------------------------------------
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
 private:
  bool prev_;
};

// ---- autocast: the precision conv2d, linear and matmul multiply float32 tensors in --------------
// (core/dtype.h) while an AutocastGuard is alive on this thread, like
// torch.autocast("cpu", dtype=torch.bfloat16) but narrower: only those three ops change, every
// tensor stays float32. Each op keeps the precision it ran with for its backward passes.
Precision autocast_precision();
class AutocastGuard {
 public:
  explicit AutocastGuard(Precision p);
  ~AutocastGuard();
 private:
  Precision prev_;
};

// True when grad mode is on and any input requires grad: the op must record a node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Records a node for `y` = op(inputs...). `backward` receives grad_y and returns one gradient
// per input, in order. Returns y (now carrying the node).
Tensor record(const char* op, Tensor y, std::initializer_list<const Tensor*> inputs,
              std::function<std::vector<Tensor>(const Tensor&)> backward);

// The same for a variable number of inputs (cat).
Tensor record_many(const char* op, Tensor y, const std::vector<const Tensor*>& inputs,
                   std::function<std::vector<Tensor>(const Tensor&)> backward);

// Records one node for an op with several outputs ys (each a fresh tensor). `backward` receives
// one gradient per output, undefined where none arrived, and returns one per input. The tape
// keeps one gradient per node, so this records the op's node on a one-element token tensor, and
// for each output a node that parks the output's gradient in a slot of the op's node and hands
// the token a gradient (a one-element zero), so the op's node runs once, after all of them (they
// are recorded later, so they come first in the walk). Returns the outputs, now carrying nodes.
std::vector<Tensor> record_multi(
    const char* op, std::vector<Tensor> ys, const std::vector<const Tensor*>& inputs,
    std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_ys)> backward);

// ---- the tape walk -----------------------------------------------------------------------------
// Accumulates d root / d leaf into .grad of every leaf that requires grad. `root` must have one
// element unless grad_root (its gradient, same shape) is given.
void backward(const Tensor& root, const Tensor& grad_root = Tensor(), bool retain_graph = false);

}  // namespace scconv::autograd
