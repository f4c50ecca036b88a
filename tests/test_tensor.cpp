// tests/test_tensor.cpp: the tensor type: creation, dtypes, views and strides, copies,
// in-place updates, the version counter, and the thread-count API.
// Run: ./build/tests/test_tensor
#include "core/backend.h"
#include "core/parallel.h"
#include "core/storage.h"
#include "test_util.h"

using namespace scconv;

TEST_CASE("creation, metadata and 64-byte alignment") {
  Tensor t = Tensor::zeros({2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.dim() == 3);
  CHECK(t.size(-1) == 4);
  CHECK(t.strides() == Strides{12, 4, 1});
  CHECK(t.is_contiguous());
  CHECK(t.str() == "float32(2, 3, 4)");
  CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % 64 == 0);
  CHECK(Tensor::full({3}, 2.5, DType::F64).to_vector<double>() == std::vector<double>{2.5, 2.5, 2.5});
  CHECK(Tensor::scalar(4.0).item() == 4.0);
  CHECK(Tensor::ones({2}, DType::I64).to_vector<int64_t>() == std::vector<int64_t>{1, 1});
  CHECK(Tensor::zeros({0, 3}).numel() == 0);
}

TEST_CASE("dtype conversion") {
  Tensor u = Tensor::from_vector<uint8_t>({0, 128, 255}, {3});
  CHECK(u.to(DType::F32).to_vector<float>() == std::vector<float>{0, 128, 255});
  Tensor f = Tensor::from_vector<float>({1.5f, -2.0f}, {2});
  CHECK(f.to(DType::I64).to_vector<int64_t>() == std::vector<int64_t>{1, -2});
  CHECK(f.to(DType::F64).to_vector<double>() == std::vector<double>{1.5, -2.0});
}

TEST_CASE("views share storage; slices, expands and reshapes") {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {1, 3, 2, 2});
  Tensor ch = t.slice_view(1, 1, 3);  // channels 1..2
  CHECK(ch.shape() == Shape{1, 2, 2, 2});
  CHECK(ch.is_contiguous());  // batch 1: a channel slice is contiguous
  CHECK(ch.to_vector<float>() == std::vector<float>{4, 5, 6, 7, 8, 9, 10, 11});
  Tensor sub = t.slice_view(3, 0, 2, 2);  // every other column
  CHECK_FALSE(sub.is_contiguous());
  CHECK(sub.to_vector<float>() == std::vector<float>{0, 2, 4, 6, 8, 10});
  ch.fill_(-1);  // writes through to t
  CHECK(t.to_vector<float>()[4] == -1);
  CHECK(t.view({3, 4}).shape() == Shape{3, 4});
  CHECK(t.view({-1, 2}).shape() == Shape{6, 2});
  Tensor row = Tensor::from_vector<float>({1, 2, 3}, {1, 3});
  Tensor e = row.expand({2, 3});
  CHECK(e.strides()[0] == 0);
  CHECK(e.contiguous().to_vector<float>() == std::vector<float>{1, 2, 3, 1, 2, 3});
}

TEST_CASE("copy_ broadcasts and converts; in-place ops bump the version") {
  Tensor t = Tensor::zeros({2, 3});
  uint64_t v0 = t.version();
  t.copy_(Tensor::from_vector<double>({1, 2, 3}, {3}));
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3, 1, 2, 3});
  CHECK(t.version() > v0);
  uint64_t v1 = t.version();
  t.add_(Tensor::ones({2, 3}), 2.0).mul_(0.5);
  CHECK(t.to_vector<float>() == std::vector<float>{1.5, 2, 2.5, 1.5, 2, 2.5});
  CHECK(t.version() == v1 + 2);
}

TEST_CASE("clone is deep; detach shares storage without autograd state") {
  Tensor a = Tensor::ones({4});
  a.set_requires_grad(true);
  Tensor c = a.clone();
  c.fill_(3);
  CHECK(a.to_vector<float>()[0] == 1);
  Tensor d = a.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.storage() == a.storage());
}

TEST_CASE("storage accounting tracks bytes in use") {
  size_t before = cpu_bytes_in_use();
  {
    Tensor big = Tensor::empty({1024, 1024});
    CHECK(cpu_bytes_in_use() >= before + 4 * 1024 * 1024);
    CHECK(cpu_bytes_peak() >= before + 4 * 1024 * 1024);
  }
  CHECK(cpu_bytes_in_use() == before);
}

TEST_CASE("the block cache reuses big blocks but keeps in use + cached under the high-water mark + 1/16") {
  if (!cpu_block_cache_enabled()) return;  // AddressSanitizer builds free every block at once
  empty_cpu_cache();
  reset_cpu_bytes_peak();
  const int64_t mib = 1 << 18;  // floats
  const float* first = nullptr;
  {
    Tensor a = Tensor::empty({16 * mib});  // the high-water mark of big blocks: 16 MiB
    first = a.data<float>();
  }
  CHECK(cpu_bytes_cached() >= size_t(16) << 20);  // kept for the next request of that size
  {
    Tensor b = Tensor::empty({16 * mib});
    CHECK(b.data<float>() == first);  // served from the cache
    CHECK(cpu_bytes_cached() < size_t(16) << 20);
  }
  {
    // 16 MiB cached + 1 MiB in use fit under the high-water mark + 1/16: the 16 MiB stay.
    Tensor s = Tensor::empty({1 * mib});
    CHECK(cpu_bytes_cached() >= size_t(16) << 20);
  }
  {
    // Caching the idle 16 MiB block beside these 4 would pass the high-water mark (+ 1/16), so
    // it is returned to the system.
    Tensor c = Tensor::empty({4 * mib});
    CHECK(cpu_bytes_cached() < size_t(4) << 20);
  }
  {
    Tensor d = Tensor::empty({6 * mib}), e = Tensor::empty({6 * mib});  // 4 + 12 fit in 16
    CHECK(cpu_bytes_cached() >= size_t(4) << 20);
  }
  CHECK(cpu_bytes_cached() >= size_t(16) << 20);  // 4 + 6 + 6 MiB
  empty_cpu_cache();
  CHECK(cpu_bytes_cached() == 0);
}

TEST_CASE("thread count is settable") {
  int saved = get_num_threads();
  set_num_threads(1);
  CHECK(get_num_threads() == 1);
  set_num_threads(0);  // all cores
  CHECK(get_num_threads() >= 1);
  set_num_threads(saved);
}

TEST_CASE("generator is reproducible and roughly standard normal") {
  Generator a(5), b(5);
  CHECK(a.normal({100}).to_vector<float>() == b.normal({100}).to_vector<float>());
  Tensor x = Generator(9).normal({20000}, 0, 1, DType::F64);
  double m = mean(x).item(), var = mean(mul(x, x)).item() - m * m;
  CHECK(std::fabs(m) < 0.03);
  CHECK(std::fabs(var - 1) < 0.05);
}

TEST_CASE("dropout: mask statistics, scaling and determinism") {
  Tensor x = Tensor::ones({100000});
  Generator g(1);
  Tensor y = dropout(x, 0.25, true, g);
  std::vector<float> v = y.to_vector<float>();
  int64_t zeros = 0;
  for (float e : v) {
    CHECK_MESSAGE((e == 0.f || std::fabs(e - 1.f / 0.75f) < 1e-6), "value " << e);
    zeros += e == 0.f;
  }
  CHECK(std::fabs(zeros / 100000.0 - 0.25) < 0.01);
  Generator g2(1);
  CHECK(dropout(x, 0.25, true, g2).to_vector<float>() == v);  // same seed, same mask
  CHECK(dropout(x, 0.25, true, g2).to_vector<float>() != v);  // stream moved on
  CHECK(dropout(x, 0.25, false, g2).same_impl(x));            // eval: identity
  {
    ReferenceModeGuard ref;  // reference kernel draws the same mask
    Generator g3(1);
    CHECK(dropout(x, 0.25, true, g3).to_vector<float>() == v);
  }
}
