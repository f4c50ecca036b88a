// autograd/node.cpp: grad mode, recording, and the backward walk over the tape.
#include "autograd/node.h"

#include <algorithm>
#include <atomic>
#include <unordered_set>

#include "core/backend.h"

namespace scconv::autograd {

namespace {
thread_local bool t_grad_enabled = true;
std::atomic<uint64_t> g_next_seq{1};
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

thread_local Precision t_autocast = Precision::Float32;
Precision autocast_precision() { return t_autocast; }
AutocastGuard::AutocastGuard(Precision p) : prev_(t_autocast) { t_autocast = p; }
AutocastGuard::~AutocastGuard() { t_autocast = prev_; }

SavedTensor::SavedTensor(const Tensor& t, const char* op)
    : t_(t.defined() ? t.detach() : Tensor()), version_(t.defined() ? t.version() : 0), op_(op) {}

Tensor SavedTensor::get() const {
  if (t_.defined())
    SCCONV_CHECK(t_.version() == version_,
                 op_ << " backward: a tensor " << t_.str() << " saved for the gradient was "
                     << "modified in place after it was saved (version " << version_ << " -> "
                     << t_.version() << "); its gradient would be wrong");
  return t_;
}

Node::~Node() {
  std::vector<std::shared_ptr<Node>> stack;
  for (Edge& e : inputs)
    if (e.node) stack.push_back(std::move(e.node));
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1)  // we are the last owner: take its inputs before it dies
      for (Edge& e : n->inputs)
        if (e.node) stack.push_back(std::move(e.node));
  }
}

static bool input_requires_grad(const Tensor* t) {
  return t && t->defined() && (t->requires_grad() || !t->is_leaf());
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  return std::any_of(inputs.begin(), inputs.end(), input_requires_grad);
}

Tensor record(const char* op, Tensor y, std::initializer_list<const Tensor*> inputs,
              std::function<std::vector<Tensor>(const Tensor&)> backward) {
  return record_many(op, std::move(y), std::vector<const Tensor*>(inputs), std::move(backward));
}

Tensor record_many(const char* op, Tensor y, const std::vector<const Tensor*>& inputs,
                   std::function<std::vector<Tensor>(const Tensor&)> backward) {
  auto node = std::make_shared<Node>();
  node->seq = g_next_seq++;
  node->op = op;
  for (const Tensor* t : inputs) {
    Edge e;
    if (input_requires_grad(t)) {
      e.shape = t->shape();
      if (t->is_leaf()) e.leaf = t->autograd_meta();
      else e.node = t->autograd_meta()->grad_fn;
    }
    node->inputs.push_back(std::move(e));
  }
  node->backward = std::move(backward);
  y.ensure_autograd_meta().grad_fn = std::move(node);
  return y;
}

std::vector<Tensor> record_multi(
    const char* op, std::vector<Tensor> ys, const std::vector<const Tensor*>& inputs,
    std::function<std::vector<Tensor>(const std::vector<Tensor>&)> backward) {
  auto slots = std::make_shared<std::vector<Tensor>>(ys.size());  // the outputs' gradients
  Tensor token = record_many(op, Tensor::zeros({1}), inputs, [slots, backward](const Tensor&) {
    std::vector<Tensor> grads = backward(*slots);
    std::fill(slots->begin(), slots->end(), Tensor());  // (a retained graph may run again)
    return grads;
  });
  for (size_t i = 0; i < ys.size(); ++i)
    ys[i] = record(op, std::move(ys[i]), {&token}, [slots, i](const Tensor& g) {
      (*slots)[i] = g;
      return std::vector<Tensor>{Tensor::zeros({1})};
    });
  return ys;
}

// Whether nothing but `g` holds g's memory, which is dense (in either layout).
static bool sole_owner(const Tensor& g) {
  return g.impl_shared().use_count() == 1 && g.storage().use_count() == 1 && g.offset() == 0 &&
         g.is_contiguous(g.suggest_memory_format());
}

// Adds g into a leaf's .grad, allocating it on first use. A .grad never aliases memory that
// anything else can see (the optimizer and later backward passes change it in place).
static void accumulate(Tensor& slot, const Tensor& g) {
  if (slot.defined()) slot.add_(g);
  else slot = sole_owner(g) ? g : g.clone();
}

// Adds g into a node's grad_y. Shared memory is never written: a second gradient into a slot
// that is not the node's own makes a new sum (one pass) instead of a copy and an add (two).
static void accumulate(Node& n, const Tensor& g) {
  if (!n.grad_y.defined()) {
    n.grad_y_owned = sole_owner(g);  // before grad_y holds g too
    n.grad_y = g;
  } else if (n.grad_y_owned) {
    n.grad_y.add_(g);
  } else {
    n.grad_y = backend_for(g.device()).binary(BinaryOp::Add, n.grad_y, g);
    n.grad_y_owned = true;
  }
}

void backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
  check_defined(root, "backward", "root");
  SCCONV_CHECK(!root.is_leaf(), "backward: " << root.str() << " was not produced by a "
                                             << "differentiable op on tensors that require grad");
  SCCONV_CHECK(grad_root.defined() || root.numel() == 1,
               "backward: root " << root.str() << " is not a scalar; pass its gradient");
  if (grad_root.defined())
    SCCONV_CHECK(grad_root.shape() == root.shape(),
                 "backward: gradient " << grad_root.str() << " for root " << root.str());
  NoGradGuard no_grad;

  // Collect the nodes reachable from the root (iterative DFS), then order them as the reverse
  // of the tape: a node always comes after every node that consumes its output.
  std::vector<Node*> order;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack{root.autograd_meta()->grad_fn.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    order.push_back(n);
    for (Edge& e : n->inputs)
      if (e.node) stack.push_back(e.node.get());
  }
  std::sort(order.begin(), order.end(), [](Node* a, Node* b) { return a->seq > b->seq; });

  Node* first = order.front();
  // The root node is consumed by no other node, so its grad_y is never added to in place.
  first->grad_y = grad_root.defined() ? grad_root : Tensor::full(root.shape(), 1.0, root.dtype(), root.device());
  for (Node* n : order) {
    if (!n->grad_y.defined()) continue;
    SCCONV_CHECK(!n->released, "backward through " << n->op << " a second time: its saved "
                               << "tensors were freed; pass retain_graph=true the first time");
    std::vector<Tensor> grads = n->backward(n->grad_y);
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      Edge& e = n->inputs[i];
      if (!e.needed() || i >= grads.size() || !grads[i].defined()) continue;
      SCCONV_CHECK(grads[i].shape() == e.shape, n->op << " backward: gradient " << grads[i].str()
                                                      << " for input " << i << " of shape "
                                                      << shape_str(e.shape));
      if (e.node) {
        accumulate(*e.node, grads[i]);
      } else {
        Tensor g = e.leaf->grad ? Tensor(e.leaf->grad) : Tensor();
        accumulate(g, grads[i]);
        e.leaf->grad = g.impl_shared();
      }
    }
    n->grad_y = Tensor();
    n->grad_y_owned = false;
    if (!retain_graph) {
      n->backward = nullptr;
      n->released = true;
    }
  }
}

}  // namespace scconv::autograd
