// apps/cmd_demo.cpp: `scconv demo`: trains a small conv net (conv-BN-ReLU x2, global average
// pool, linear) on synthetic 3x16x16 images whose class is the quadrant holding a bright blob,
// with plain SGD + momentum written out here, and prints loss and accuracy as it learns.
// A smoke test of the whole stack (ops, autograd, oneDNN) that needs no data set.
//   scconv demo [--steps 300] [--threads N] [--seed S]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "apps/args.h"
#include "autograd/ops.h"
#include "core/parallel.h"

namespace scconv::apps {

namespace {

// A batch of images (N,3,16,16) with a bright 5x5 blob in quadrant `label` on noise.
void synthetic_batch(Generator& g, int64_t n, Tensor& images, Tensor& labels) {
  images = g.normal({n, 3, 16, 16}, 0, 0.5);
  labels = Tensor::empty({n}, DType::I64);
  float* px = images.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    int64_t q = static_cast<int64_t>(g.uniform() * 4) % 4;
    labels.data<int64_t>()[i] = q;
    int64_t y0 = (q / 2) * 8 + static_cast<int64_t>(g.uniform() * 3);
    int64_t x0 = (q % 2) * 8 + static_cast<int64_t>(g.uniform() * 3);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = y0; y < y0 + 5; ++y)
        for (int64_t x = x0; x < x0 + 5; ++x) px[((i * 3 + c) * 16 + y) * 16 + x] += 1.5f;
  }
}

}  // namespace

int cmd_demo(const Args& args) {
  ArgParser p("demo", "train a small CNN on synthetic images (no data needed)");
  p.option("--steps", "training steps of 64 images (default 300)");
  p.option("--threads", "threads (default: all cores)");
  p.option("--seed", "seed of the weights and the images (default 0)");
  if (!p.parse(args)) return 0;
  const int64_t steps = p.get_int("--steps", 300, 1, 10000000);
  set_num_threads(p.get_int("--threads", 0, 0, kMaxThreads));
  const int64_t seed = p.get_int("--seed", 0, 0, INT64_MAX);
  Generator g(static_cast<uint64_t>(seed));

  // Parameters: Kaiming-normal convs, BN gamma 1 / beta 0, small linear.
  std::vector<Tensor> params = {
      g.normal({16, 3, 3, 3}, 0, std::sqrt(2.0 / 27)),  Tensor::ones({16}), Tensor::zeros({16}),
      g.normal({32, 16, 3, 3}, 0, std::sqrt(2.0 / 144)), Tensor::ones({32}), Tensor::zeros({32}),
      g.normal({4, 32}, 0, std::sqrt(1.0 / 32)),         Tensor::zeros({4})};
  std::vector<Tensor> velocity;
  for (Tensor& p : params) {
    p.set_requires_grad(true);
    velocity.push_back(Tensor::zeros(p.shape()));
  }
  auto model = [&](const Tensor& x) {
    Tensor h = relu(batch_norm(conv2d(x, params[0], Tensor(), {1, 1}, {1, 1}), params[1],
                               params[2], Tensor(), Tensor(), true));
    h = relu(batch_norm(conv2d(h, params[3], Tensor(), {2, 2}, {1, 1}), params[4], params[5],
                        Tensor(), Tensor(), true));
    return linear(flatten(global_avg_pool2d(h)), params[6], params[7]);
  };

  const double lr = 0.05, momentum = 0.9;
  auto t0 = std::chrono::steady_clock::now();
  double acc_sum = 0, loss_sum = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    Tensor x, y;
    synthetic_batch(g, 64, x, y);
    Tensor logits = model(x);
    Tensor loss = cross_entropy(logits, y);
    for (Tensor& p : params) p.set_grad(Tensor());
    autograd::backward(loss);
    {
      autograd::NoGradGuard ng;
      for (size_t k = 0; k < params.size(); ++k) {  // v = m v + g ; p -= lr v
        velocity[k].mul_(momentum).add_(params[k].grad());
        params[k].add_(velocity[k], -lr);
      }
    }
    // accuracy of this batch
    std::vector<float> l = logits.to_vector<float>();
    int64_t correct = 0;
    for (int64_t i = 0; i < 64; ++i) {
      int64_t best = 0;
      for (int64_t c = 1; c < 4; ++c)
        if (l[i * 4 + c] > l[i * 4 + best]) best = c;
      correct += best == y.data<int64_t>()[i];
    }
    acc_sum += correct / 64.0;
    loss_sum += loss.item();
    if (step % 50 == 0 || step == steps) {
      int64_t window = step % 50 == 0 ? 50 : step % 50;
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("step %4lld  loss %.4f  accuracy %5.1f%%  %.0f images/s\n",
                  static_cast<long long>(step), loss_sum / window, 100 * acc_sum / window,
                  step * 64 / secs);
      std::fflush(stdout);
      acc_sum = loss_sum = 0;
    }
  }
  return 0;
}

}  // namespace scconv::apps
