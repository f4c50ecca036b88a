// tests/test_autograd.cpp: the tape: accumulation into leaves, shared subexpressions,
// no-grad mode, freeing and retaining the graph, the in-place (version counter) check, and
// very deep graphs (the walk is iterative).
// Run: ./build/tests/test_autograd
#include <map>

#include "core/profile.h"
#include "core/storage.h"
#include "test_util.h"

using namespace scconv;

TEST_CASE("chain rule through a small graph, with a reused input") {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3}).set_requires_grad(true);
  Tensor w = Tensor::from_vector<double>({0.5, -1, 2}, {3}).set_requires_grad(true);
  // L = sum(x * w + x * x) -> dL/dx = w + 2x, dL/dw = x
  Tensor loss = sum(add(mul(x, w), mul(x, x)));
  autograd::backward(loss);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2.5, 3, 8});
  CHECK(w.grad().to_vector<double>() == std::vector<double>{1, 2, 3});
}

TEST_CASE("a gradient shared by two inputs is never added into in place") {
  // z = (a + a2) + 3a with a = 2x, a2 = 5y. add() hands its gradient to both inputs as it is,
  // so a and a2 receive the same tensor; the node of a takes it without a copy, then 3's
  // gradient arrives: it must make a new sum, not change the tensor a2 still has to use.
  for (MemoryFormat fmt : {MemoryFormat::Contiguous, MemoryFormat::ChannelsLast}) {
    CAPTURE(int(fmt));
    const Shape s{2, 3, 2, 2};
    Tensor x = Tensor::ones(s).contiguous(fmt).set_requires_grad(true);
    Tensor y = Tensor::ones(s).contiguous(fmt).set_requires_grad(true);
    Tensor a = mul(x, 2.0), a2 = mul(y, 5.0);
    Tensor e = mul(a, 3.0);  // recorded before b: its gradient reaches a second
    Tensor b = add(a, a2);
    Tensor grad_z = Tensor::ones(s).contiguous(fmt);
    autograd::backward(add(b, e), grad_z);
    CHECK(testing::max_abs(sub(y.grad(), Tensor::full(s, 5.0))) == 0);  // 5, not 5 (1 + 3)
    CHECK(testing::max_abs(sub(x.grad(), Tensor::full(s, 8.0))) == 0);  // 2 (1 + 3)
    CHECK(testing::max_abs(sub(grad_z, Tensor::ones(s))) == 0);         // the caller's, untouched
  }
}

TEST_CASE("an op with several outputs runs its backward once, with the gradients that arrived") {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4, 5}, {5}).set_requires_grad(true);
  int calls = 0;
  std::vector<bool> arrived;
  auto op = [&](const Tensor& in) {  // (x[:2], x[2:]) as fresh tensors
    std::vector<Tensor> ys{in.slice_view(0, 0, 2).contiguous().detach(), in.slice_view(0, 2, 5).contiguous().detach()};
    return autograd::record_multi("two_parts", ys, {&in}, [&](const std::vector<Tensor>& g) {
      ++calls;
      arrived = {g[0].defined(), g[1].defined()};
      std::vector<double> gx(5, 0.0);
      for (int i = 0; i < 2; ++i)
        if (g[i].defined()) {
          auto v = g[i].to_vector<double>();
          for (size_t k = 0; k < v.size(); ++k) gx[(i == 0 ? 0 : 2) + k] = v[k];
        }
      return std::vector<Tensor>{Tensor::from_vector(gx, {5})};
    });
  };
  auto parts = op(x);
  // both outputs used, the second twice: one call, with the sum of the second's two gradients
  autograd::backward(add(add(sum(mul(parts[0], 2.0)), sum(parts[1])), sum(mul(parts[1], 3.0))));
  CHECK(calls == 1);
  CHECK(arrived == std::vector<bool>{true, true});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 2, 4, 4, 4});
  // only the first output used: the second's gradient is undefined
  x.set_grad(Tensor());
  parts = op(x);
  autograd::backward(sum(parts[0]), Tensor(), /*retain_graph=*/true);
  CHECK(calls == 2);
  CHECK(arrived == std::vector<bool>{true, false});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 1, 0, 0, 0});
  // a retained graph runs again with fresh slots
  autograd::backward(sum(mul(parts[0], 5.0)));
  CHECK(calls == 3);
  CHECK(arrived == std::vector<bool>{true, false});
  CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 6, 0, 0, 0});
}

TEST_CASE("gradients accumulate across backward calls until reset") {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad(true);
  autograd::backward(sum(mul(x, 3.0)));
  autograd::backward(sum(mul(x, 3.0)));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{6, 6});
  x.set_grad(Tensor());
  autograd::backward(sum(x * x));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4});
}

TEST_CASE("leaves without requires_grad get no gradient; no-grad mode records nothing") {
  Tensor x = Tensor::ones({2}).set_requires_grad(true);
  Tensor c = Tensor::ones({2});
  Tensor y = mul(x, c);
  CHECK_FALSE(y.is_leaf());
  autograd::backward(sum(y));
  CHECK_FALSE(c.grad().defined());
  {
    autograd::NoGradGuard ng;
    Tensor z = mul(x, c);
    CHECK(z.is_leaf());
    CHECK_FALSE(z.requires_grad());
  }
  CHECK(autograd::grad_enabled());
}

TEST_CASE("the graph is freed after backward unless retained") {
  Tensor x = Tensor::ones({3}).set_requires_grad(true);
  Tensor loss = sum(sigmoid(x));
  autograd::backward(loss, Tensor(), /*retain_graph=*/true);
  autograd::backward(loss);  // allowed: retained the first time
  CHECK_THROWS_WITH_AS(autograd::backward(loss), doctest::Contains("a second time"), Error);
}

TEST_CASE("a saved tensor modified in place is an error, not a wrong gradient") {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}).set_requires_grad(true);
  Tensor s = Tensor::from_vector<double>({3, 4}, {2});
  Tensor loss = sum(mul(x, s));  // saves s
  s.mul_(2.0);
  CHECK_THROWS_WITH_AS(autograd::backward(loss), doctest::Contains("modified in place"), Error);
}

TEST_CASE("non-scalar roots need an explicit gradient") {
  Tensor x = Tensor::ones({3}).set_requires_grad(true);
  Tensor y = mul(x, 2.0);
  CHECK_THROWS_WITH_AS(autograd::backward(y), doctest::Contains("not a scalar"), Error);
  autograd::backward(y, Tensor::from_vector<float>({1, 2, 3}, {3}));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2, 4, 6});
}

TEST_CASE("a 100000-op chain backpropagates and frees without recursion") {
  Tensor x = Tensor::from_vector<double>({1.0}, {1}).set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add(y, 1e-4);
  autograd::backward(sum(y));
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("an unused 100000-op graph frees itself without recursion") {
  Tensor x = Tensor::ones({1}).set_requires_grad(true);
  {
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = mul(y, 1.0);
  }  // dropped without backward
  CHECK(x.grad().defined() == false);
}

TEST_CASE("activations are released when the graph is") {
  size_t before = cpu_bytes_in_use();
  {
    Tensor x = Tensor::ones({256, 1024}).set_requires_grad(true);
    Tensor loss = sum(sigmoid(relu(x)));
    autograd::backward(loss);
  }
  CHECK(cpu_bytes_in_use() == before);
}

TEST_CASE("the profiler times kernels by family only while it is on") {
  Tensor x = Generator(1).normal({2, 3, 8, 8}), w = Generator(2).normal({4, 3, 3, 3});
  profile::reset();
  conv2d(x, w, Tensor(), {1, 1}, {1, 1});  // off: not counted
  CHECK(profile::totals().empty());
  profile::set_enabled(true);
  Tensor y = relu(conv2d(x, w, Tensor(), {1, 1}, {1, 1}));
  { profile::Scope s("optimizer"); }
  profile::set_enabled(false);
  std::map<std::string, int64_t> calls;
  for (auto& f : profile::totals()) {
    calls[f.family] = f.calls;
    CHECK(f.seconds >= 0);
  }
  CHECK(calls["conv"] == 1);
  CHECK(calls["elementwise"] == 1);
  CHECK(calls["optimizer"] == 1);
  // the decorator returns what the kernels return
  CHECK_CLOSE(y, relu(conv2d(x, w, Tensor(), {1, 1}, {1, 1})), 0, 0, "profiled vs plain");
  profile::reset();
}
