// tests/test_gradcheck.cpp: every differentiable op against float64 central finite
// differences, on the fast CPU backend (inputs NCHW and channels-last) and on the reference backend.
// Run: ./build/tests/test_gradcheck
#include "core/backend.h"
#include "op_cases.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;

TEST_CASE("gradcheck: every op, fast backend") {
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    gradcheck(c.name, c.f, case_inputs(c, DType::F64, 1));
  }
}

TEST_CASE("gradcheck: every op, fast backend, channels-last inputs") {
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    gradcheck(c.name, c.f, case_inputs(c, DType::F64, 3, /*channels_last=*/true));
  }
}

TEST_CASE("gradcheck: every op, reference backend") {
  ReferenceModeGuard ref;
  for (const OpCase& c : op_cases()) {
    CAPTURE(c.name);
    gradcheck(c.name, c.f, case_inputs(c, DType::F64, 2));
  }
}

TEST_CASE("gradcheck catches a wrong gradient") {
  // A function whose recorded backward is deliberately wrong (factor 2) must fail the check:
  // the helper itself is able to fail.
  auto wrong = [](const std::vector<Tensor>& x) {
    Tensor y = mul(x[0], 3.0).detach();
    if (!autograd::needs_grad({&x[0]})) return y;
    return autograd::record("wrong", y, {&x[0]}, [](const Tensor& g) {
      return std::vector<Tensor>{mul(g, 6.0)};
    });
  };
  Generator g(3);
  std::vector<Tensor> in{g.normal({4}, 0, 1, DType::F64)};
  Tensor proj = Tensor::ones({4}, DType::F64);
  auto fb = forward_backward(wrong, in, proj);
  CHECK_FALSE(mismatch(fb[1], Tensor::full({4}, 3.0, DType::F64), 1e-5, 1e-6).empty());
}
