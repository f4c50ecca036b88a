// tests/test_device.cpp: the device-generic core (core/device.h) and the ops that replaced the
// host loops outside core/: host access is refused on other devices with the device named,
// device names parse, a build or machine without a GPU says which, the SGD update and argmax
// ops match their reference, and the training loop's device-side sums give the numbers the
// host loop gave. Runs everywhere; the GPU itself is exercised by the parity suite (label gpu).
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "core/backend.h"
#include "core/device.h"
#include "core/file_io.h"
#include "core/rng.h"
#include "layers/module.h"
#include "models/model_config.h"
#include "models/resnet.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;
using doctest::Contains;
namespace fs = std::filesystem;

TEST_CASE("host access to a tensor on another device is an Error naming the device") {
  // an empty storage needs no memory, so it may be tagged with a device this machine lacks
  Tensor t = Tensor::empty({0, 3}, DType::F32, Device::CUDA);
  CHECK(t.device() == Device::CUDA);
  CHECK_THROWS_WITH_AS(t.data<float>(), Contains("data() on a float32(0, 3) tensor on cuda"), Error);
  CHECK_THROWS_WITH_AS(t.raw_data(), Contains("copy it with to(Device::CPU) first"), Error);
  CHECK_NOTHROW(t.device_data<float>());  // the device's own kernels may
  Tensor c = Tensor::ones({1});
  CHECK(c.item() == 1.0);
  CHECK(c.to(Device::CPU).same_impl(c));  // already there: no copy
}

TEST_CASE("device names: cpu, cuda, cuda:N; anything else is a usage error") {
  CHECK(parse_device("cpu").type == Device::CPU);
  CHECK(parse_device("cuda").type == Device::CUDA);
  CHECK(parse_device("cuda").index == 0);
  CHECK(parse_device("cuda:3").index == 3);
  CHECK(device_spec_name(parse_device("cuda:3")) == "cuda:3");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "CUDA", "cuda:-1", "cuda:99999"})
    CHECK_THROWS_WITH_AS(parse_device(bad), Contains("known: cpu, cuda, cuda:N"), UsageError);
}

TEST_CASE("without a usable GPU, device cuda is an Error saying whether the build or the machine lacks it") {
  std::string why;
  if (device_available(Device::CUDA, &why)) {
    MESSAGE("a GPU is available here; the no-GPU messages are not reachable");
    return;
  }
  const bool cuda_build = why.find("SCCONV_CUDA=OFF") == std::string::npos;
  CHECK((cuda_build ? why.find("no CUDA GPU") != std::string::npos : true));
  CHECK_THROWS_WITH_AS(Tensor::ones({2}).to(Device::CUDA), Contains(why.c_str()), Error);
  CHECK_THROWS_WITH_AS(Tensor::zeros({2}, DType::F32, Device::CUDA), Contains(why.c_str()), Error);
  CHECK_THROWS_WITH_AS(select_device(parse_device("cuda:0")), Contains(("device cuda:0: " + why).c_str()), Error);
  CHECK(Tensor::empty_pinned({2, 3}, DType::F32).storage()->pinned() == false);  // plain memory then
}

TEST_CASE("sgd_update: the CPU kernel matches the reference for every option, many tensors in one call") {
  Generator g(5);
  for (bool nesterov : {false, true})
    for (double momentum : {0.0, 0.9}) {
      if (nesterov && momentum == 0) continue;
      std::vector<SGDParamUpdate> fast, ref;
      for (int k = 0; k < 3; ++k) {
        Tensor p = g.normal({70001 + k}), grad = g.normal({70001 + k}), b = g.normal({70001 + k});
        const bool first = k == 0;
        fast.push_back({p.clone(), grad, momentum ? b.clone() : Tensor(), 1e-3 * k, first});
        ref.push_back({p.clone(), grad, momentum ? b.clone() : Tensor(), 1e-3 * k, first});
      }
      const SGDHyper h{0.1, momentum, nesterov ? 0.0 : 0.1, nesterov};
      // a nonzero skip flag changes nothing; zero updates
      std::vector<Tensor> before;
      for (auto& u : fast) before.push_back(u.param.clone());
      for (Backend* b : {&cpu_backend(), &reference_backend()})
        b->sgd_update(b == &cpu_backend() ? fast : ref, h, Tensor::full({}, 1.0, DType::F64));
      for (int k = 0; k < 3; ++k) {
        CHECK(mismatch(fast[k].param, before[k], 0, 0).empty());
        CHECK(mismatch(ref[k].param, before[k], 0, 0).empty());
      }
      cpu_backend().sgd_update(fast, h, Tensor::full({}, 0.0, DType::F64));
      reference_backend().sgd_update(ref, h, Tensor());
      for (int k = 0; k < 3; ++k) {
        CHECK_MESSAGE(mismatch(fast[k].param, ref[k].param, 1e-6, 1e-7).empty(), k);
        CHECK_MESSAGE(!mismatch(fast[k].param, before[k], 0, 0).empty(), k);
        if (momentum) CHECK_MESSAGE(mismatch(fast[k].buffer, ref[k].buffer, 1e-6, 1e-7).empty(), k);
      }
    }
}

TEST_CASE("argmax_rows: first maximum per row, both backends, a strided view too") {
  Tensor x = Tensor::from_vector<float>({1, 3, 3, 0, -1, -2, 5, 5, 5, 0, 0, 7}, {3, 4});
  for (Backend* b : {&cpu_backend(), &reference_backend()}) {
    CHECK(b->argmax_rows(x).to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3});
    Tensor xt = x.as_strided({4, 3}, {1, 4}, 0);  // the transpose, a view
    CHECK(b->argmax_rows(xt).to_vector<int64_t>() == std::vector<int64_t>{2, 0, 1, 2});
  }
}

TEST_CASE("Module::to(Device::CPU) keeps the handles; batch norm's counter counts through a Tensor op") {
  ModelConfig cfg = parse_model_config(nlohmann::json{{"arch", "resnet20"}}, "test");
  Generator g(0);
  auto model = build_model(cfg, g);
  auto before = model->named_tensors();
  model->to(Device::CPU);
  CHECK(model->device() == Device::CPU);
  auto after = model->named_tensors();
  REQUIRE(before.size() == after.size());
  for (size_t i = 0; i < before.size(); ++i) CHECK(before[i].second.same_impl(after[i].second));
  model->train();
  (*model)(g.normal({2, 3, 8, 8}));
  (*model)(g.normal({2, 3, 8, 8}));
  CHECK(model->state_dict().at("bn1.num_batches_tracked").item() == 2);
}

TEST_CASE("--device: a CUDA-less build or a GPU-less machine is an error naming which, for every command") {
  std::string why;
  if (device_available(Device::CUDA, &why)) {
    MESSAGE("a GPU is available here; see the gpu-labelled suite");
    return;
  }
  const fs::path err = fs::temp_directory_path() / "scconv_test_device_stderr.txt";
  for (std::string args : {"train --config quick --device cuda --set out=/nonexistent/x", "eval --weights x --model resnet20 --device cuda",
                           "forward --model resnet20 --input x --output y --device cuda",
                           "bench --model resnet20 --device cuda:1"}) {
    const std::string cmd = std::string(SCCONV_BINARY) + " " + args + " > /dev/null 2> " + err.string();
    const int status = std::system(cmd.c_str());
    const std::string text = read_file(err.string(), 1 << 20);
    CHECK_MESSAGE(WEXITSTATUS(status) == 1, args << "\n" << text);
    CHECK_MESSAGE(text.find(why) != std::string::npos, args << "\n" << text);
  }
  const std::string cmd = std::string(SCCONV_BINARY) + " bench --model resnet20 --device tpu > /dev/null 2> " + err.string();
  const int status = std::system(cmd.c_str());
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(read_file(err.string(), 1 << 20).find("unknown device 'tpu'") != std::string::npos);
}
