// tests/test_cuda.cpp: the CUDA backend against the CPU (ctest label `gpu`). Every case of
// op_cases.h forward and backward in both memory layouts against the reference kernels; one SGD
// step of four ResNets against the CPU backend (loss, every gradient, every buffer and parameter
// after the step); a checkpoint round trip CPU -> GPU -> CPU; the out-of-memory message.
// Without a usable GPU (a CPU-only build, or no GPU on this machine) the executable prints why
// and exits 77, which ctest reports as skipped (never as passed).
// Run: ./build/tests/test_cuda        (scripts/gpu-check.sh runs it on a GPU machine)
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>

#include "core/device.h"
#include "core/safetensors.h"
#include "models/model_config.h"
#include "models/resnet.h"
#include "op_cases.h"
#include "optim/sgd.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;
using doctest::Contains;

namespace {

constexpr int kSkipped = 77;  // SKIP_RETURN_CODE in tests/CMakeLists.txt

std::vector<Tensor> on(Device d, const std::vector<Tensor>& xs) {
  std::vector<Tensor> out;
  for (const Tensor& x : xs) out.push_back(x.to(d));
  return out;
}

// float32 tolerances as test_reference.cpp derives them: relative 1e-4, absolute 1e-5 times the
// tensor's magnitude (long float32 sums cancel).
void check_all_close(const std::vector<Tensor>& gpu, const std::vector<Tensor>& ref, double rtol, double atol,
                     const std::string& what) {
  REQUIRE(gpu.size() == ref.size());
  CHECK(gpu[0].device() == Device::CUDA);  // (an input without a gradient gets CPU zeros)
  for (size_t k = 0; k < gpu.size(); ++k) {
    CHECK_CLOSE(gpu[k].to(Device::CPU), ref[k], rtol, atol * std::max(1.0, max_abs(ref[k])),
                what << (k == 0 ? ": output" : ": gradient of input " + std::to_string(k - 1)));
  }
}

}  // namespace

TEST_CASE("cuda parity: every op in the table, forward and backward, NCHW and channels-last (float32)") {
  for (bool channels_last : {false, true})
    for (const OpCase& c : op_cases()) {
      CAPTURE(c.name);
      CAPTURE(channels_last);
      const std::vector<Tensor> plain = case_inputs(c, DType::F32, 5);
      const std::vector<Tensor> inputs = case_inputs(c, DType::F32, 5, channels_last);
      std::vector<Tensor> ref;
      Tensor proj;
      {
        ReferenceModeGuard guard;
        {
          autograd::NoGradGuard ng;
          proj = Generator(99).normal(c.f(plain).shape(), 0, 1, DType::F32);
        }
        ref = forward_backward(c.f, plain, proj);
      }
      const std::vector<Tensor> gpu = forward_backward(c.f, on(Device::CUDA, inputs), proj.to(Device::CUDA));
      check_all_close(gpu, ref, 1e-4, 1e-5, c.name + (channels_last ? " (channels-last)" : ""));
    }
}

TEST_CASE("cuda parity: ResNet-sized shapes (cuDNN and cuBLAS paths, grouped and strided)") {
  using V = std::vector<Tensor>;
  Generator g(11);
  struct Case {
    std::string name;
    std::function<Tensor(const V&)> f;
    V inputs;
  };
  const std::vector<Case> cases = {
      {"conv 16->16 3x3 on channels-last (8,16,32,32)",
       [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1}, {1, 1}); },
       {g.normal({8, 16, 32, 32}).contiguous(MemoryFormat::ChannelsLast), g.normal({16, 16, 3, 3}, 0, 0.1)}},
      {"conv 16->32 3x3 s2 groups 2 bias", [](const V& x) { return conv2d(x[0], x[1], x[2], {2, 2}, {1, 1}, {1, 1}, 2); },
       {g.normal({4, 16, 16, 16}), g.normal({32, 8, 3, 3}, 0, 0.1), g.normal({32})}},
      {"batch_norm + relu (16,32,16,16) channels-last",
       [](const V& x) { return relu(batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), true)); },
       {g.normal({16, 32, 16, 16}, 0.5, 2).contiguous(MemoryFormat::ChannelsLast), g.normal({32}), g.normal({32})}},
      {"fused SRU (4,32,16,16) channels-last, 16 groups",
       [](const V& x) { return sru(x[0], x[1], x[2], x[3], sru_case(16, math::SRUGate::Soft, false)); },
       {g.normal({4, 32, 16, 16}, 0.5, 2).contiguous(MemoryFormat::ChannelsLast), g.normal({32}), g.normal({32}),
        g.normal({32})}},
      {"linear 128x64 -> 10", [](const V& x) { return linear(x[0], x[1], x[2]); },
       {g.normal({128, 64}), g.normal({10, 64}, 0, 0.1), g.normal({10})}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Tensor proj;
    {
      autograd::NoGradGuard ng;
      proj = Generator(99).normal(c.f(c.inputs).shape(), 0, 1, DType::F32);
    }
    const std::vector<Tensor> cpu = forward_backward(c.f, c.inputs, proj);
    const std::vector<Tensor> gpu = forward_backward(c.f, on(Device::CUDA, c.inputs), proj.to(Device::CUDA));
    check_all_close(gpu, cpu, 1e-3, 1e-4, c.name);
  }
}

TEST_CASE("cuda parity: one SGD step of each ResNet against the CPU (loss, gradients, buffers, parameters)") {
  for (const char* preset : {"resnet20", "resnet20-scconv", "resnet56-scconv", "resnet50-cifar-scconv"}) {
    CAPTURE(preset);
    const ModelConfig cfg = parse_model_config(load_model_preset(preset), preset);
    Generator g1(1), g2(1);
    auto cpu = build_model(cfg, g1);
    auto gpu = build_model(cfg, g2);
    gpu->to(Device::CUDA);
    const Tensor x = Generator(3).normal({8, 3, 32, 32});
    const Tensor labels = case_labels(8, cfg.num_classes);
    std::map<std::string, Tensor> grads[2];
    Tensor loss[2];
    for (int k = 0; k < 2; ++k) {
      Module& m = k == 0 ? *cpu : *gpu;
      const Device d = k == 0 ? Device::CPU : Device::CUDA;
      m.train();
      SGD opt(m.named_parameters(), SGDOptions{});
      loss[k] = cross_entropy(m(x.to(d)), labels.to(d));
      autograd::backward(loss[k]);
      for (auto& [name, p] : m.named_parameters()) grads[k][name] = p.grad().to(Device::CPU);
      opt.step(0.1);
    }
    CHECK_CLOSE(loss[1].to(Device::CPU), loss[0], 1e-4, 1e-5, preset << ": loss");
    for (auto& [name, g] : grads[0])
      CHECK_CLOSE(grads[1][name], g, 2e-3, 2e-4 * std::max(1.0, max_abs(g)), preset << ": gradient of " << name);
    const auto cpu_state = cpu->state_dict(), gpu_state = gpu->state_dict();
    for (auto& [name, t] : cpu_state) {
      REQUIRE(gpu_state.count(name));
      CHECK(gpu_state.at(name).device() == Device::CUDA);
      CHECK_CLOSE(gpu_state.at(name).to(Device::CPU), t, 2e-3, 2e-4 * std::max(1.0, max_abs(t)),
                  preset << ": " << name << " after the step");
    }
  }
}

TEST_CASE("checkpoints are device-independent: CPU -> GPU -> CPU keeps every name and value") {
  const ModelConfig cfg = parse_model_config(load_model_preset("resnet20-scconv"), "resnet20-scconv");
  Generator g(4), g2(5), g3(6);
  auto cpu = build_model(cfg, g);
  const std::string dir = (std::filesystem::temp_directory_path() / "scconv_test_cuda").string();
  std::filesystem::create_directories(dir);
  save_safetensors(dir + "/cpu.safetensors", cpu->state_dict());
  auto gpu = build_model(cfg, g2);
  gpu->to(Device::CUDA);
  CHECK(gpu->load_state_dict(load_safetensors(dir + "/cpu.safetensors").tensors, true, "cpu.safetensors").empty());
  for (auto& [name, t] : gpu->state_dict()) CHECK_MESSAGE(t.device() == Device::CUDA, name << " stays on the GPU");
  // evaluation on both devices agrees
  cpu->eval();
  gpu->eval();
  const Tensor x = Generator(8).normal({4, 3, 32, 32});
  {
    autograd::NoGradGuard ng;
    CHECK_CLOSE((*gpu)(x.to(Device::CUDA)).to(Device::CPU), (*cpu)(x), 1e-3, 1e-4, "eval logits");
  }
  save_safetensors(dir + "/gpu.safetensors", gpu->state_dict());
  auto back = build_model(cfg, g3);
  CHECK(back->load_state_dict(load_safetensors(dir + "/gpu.safetensors").tensors, true, "gpu.safetensors").empty());
  const auto a = cpu->state_dict(), b = back->state_dict();
  REQUIRE(a.size() == b.size());
  for (auto& [name, t] : a) CHECK_CLOSE(b.at(name), t, 0, 0, name << " after CPU -> GPU -> CPU");
  std::filesystem::remove_all(dir);
}

TEST_CASE("device memory: out of memory is an Error naming the op, the bytes asked for, the cache and free memory") {
  const Tensor small = Tensor::ones({1024}, DType::F32, Device::CUDA);
  const Tensor y = relu(small);  // an op that allocates; the cache now holds blocks after it
  CHECK_THROWS_WITH_AS(Tensor::empty({int64_t(1) << 42}, DType::F32, Device::CUDA),
                       Contains("CUDA out of memory"), Error);
  try {
    Tensor::empty({int64_t(1) << 42}, DType::F32, Device::CUDA);
  } catch (const Error& e) {
    const std::string m = e.what();
    CHECK(m.find(std::to_string(int64_t(1) << 44) + " bytes") != std::string::npos);
    CHECK(m.find("the cache held") != std::string::npos);
    CHECK(m.find("bytes free") != std::string::npos);
  }
  CHECK(y.to(Device::CPU).to_vector<float>()[0] == 1.0f);  // the device still works afterwards
}

TEST_CASE("host access to device memory is refused, naming the device; copies are exact") {
  Tensor t = Generator(2).normal({3, 5}).to(Device::CUDA);
  CHECK_THROWS_WITH_AS(t.data<float>(), Contains("on cuda"), Error);
  const Tensor back = t.to(Device::CPU);
  CHECK_CLOSE(back.to(Device::CUDA).to(Device::CPU), back, 0, 0, "round trip");
  const Tensor cl = Generator(3).normal({2, 4, 3, 3}).contiguous(MemoryFormat::ChannelsLast);
  CHECK(cl.to(Device::CUDA).is_contiguous(MemoryFormat::ChannelsLast));
  CHECK(backend_for(Device::CUDA).first_nonfinite({t, div(t, Tensor::zeros({}, DType::F32, Device::CUDA))}) == 1);
  CHECK(backend_for(Device::CUDA).first_nonfinite({t, t}) == -1);
  const Tensor idx = backend_for(Device::CUDA).nonfinite_index({t, t, div(t, Tensor::zeros({}, DType::F32, Device::CUDA))});
  CHECK(idx.device() == Device::CUDA);
  CHECK(idx.dtype() == DType::I64);
  CHECK(idx.to(Device::CPU).item() == 2);
}

TEST_CASE("sgd_update on cuda: a nonzero skip flag on the device leaves everything as it was") {
  Generator g(4);
  const Tensor p0 = g.normal({1000}), grad = g.normal({1000}), buf0 = g.normal({1000});
  for (double flag : {1.0, 0.0}) {
    Tensor p = p0.to(Device::CUDA), b = buf0.to(Device::CUDA), pc = p0.clone(), bc = buf0.clone();
    const SGDHyper h{0.1, 0.9, 0.0, false};
    backend_for(Device::CUDA).sgd_update({{p, grad.to(Device::CUDA), b, 1e-4, false}}, h,
                                         Tensor::full({}, flag, DType::F64, Device::CUDA));
    reference_backend().sgd_update({{pc, grad, bc, 1e-4, false}}, h, Tensor::full({}, flag, DType::F64));
    CHECK_CLOSE(p.to(Device::CPU), pc, 1e-6, 1e-7, "parameter");
    CHECK_CLOSE(b.to(Device::CPU), bc, 1e-6, 1e-7, "buffer");
    CHECK((mismatch(pc, p0, 0, 0).empty()) == (flag != 0));
  }
}

int main(int argc, char** argv) {
  std::string why;
  if (!device_available(Device::CUDA, &why)) {
    std::printf("test_cuda: SKIPPED (%s)\n", why.c_str());
    return kSkipped;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
