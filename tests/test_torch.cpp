// tests/test_torch.cpp: every op of op_cases.h against PyTorch. tests/data/torch_ops.safetensors
// (written by tools/gen_torch_reference.py) holds, per case, float32 inputs, a projection, the
// output and the gradients of sum(out * proj) computed by PyTorch in float64. We run the
// float32 fast path and compare at float32 tolerances.
// Run: ./build/tests/test_torch
#include "core/safetensors.h"
#include "op_cases.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::testing;

namespace {
const SafetensorsFile& torch_data() {
  static SafetensorsFile f = load_safetensors(std::string(SCCONV_TEST_DATA) + "/torch_ops.safetensors");
  return f;
}
Tensor entry(const std::string& key) {
  auto it = torch_data().tensors.find(key);
  REQUIRE_MESSAGE(it != torch_data().tensors.end(), "missing " << key << " in torch_ops.safetensors");
  return it->second;
}
// Cases with no PyTorch counterpart: dropout draws from our own generator.
bool torch_skips(const std::string& name) { return name == "dropout"; }
}  // namespace

TEST_CASE("PyTorch parity: every op in the table (float32, fast path)") {
  int compared = 0;
  for (const OpCase& c : op_cases()) {
    if (torch_skips(c.name)) continue;
    CAPTURE(c.name);
    std::vector<Tensor> ins;
    for (size_t k = 0; k < c.shapes.size(); ++k) {
      ins.push_back(entry(c.name + ".in" + std::to_string(k)));
      REQUIRE(ins.back().shape() == c.shapes[k]);
    }
    std::vector<Tensor> got = forward_backward(c.f, ins, entry(c.name + ".proj"));
    CHECK_CLOSE(got[0], entry(c.name + ".out"), 1e-4, 1e-5, c.name << ": output");
    for (size_t k = 0; k < ins.size(); ++k)
      CHECK_CLOSE(got[k + 1], entry(c.name + ".grad" + std::to_string(k)), 1e-4, 1e-5,
                  c.name << ": gradient of input " << k);
    ++compared;
  }
  // Every case in the file was compared (no silent skips).
  int in_file = 0;
  for (auto& [k, v] : torch_data().tensors)
    if (k.size() > 4 && k.substr(k.size() - 4) == ".out") ++in_file;
  CHECK(compared == in_file);
  CHECK(compared >= 50);
}

TEST_CASE("PyTorch parity: batch norm running statistics update") {
  Tensor x = entry("batch_norm_train.in0");
  Tensor rm = case_running(3, false, DType::F32), rv = case_running(3, true, DType::F32);
  batch_norm(x, entry("batch_norm_train.in1"), entry("batch_norm_train.in2"), rm, rv, true, 0.1,
             1e-5);
  CHECK_CLOSE(rm, entry("batch_norm_train.running_mean"), 1e-5, 1e-6, "running_mean");
  CHECK_CLOSE(rv, entry("batch_norm_train.running_var"), 1e-5, 1e-6, "running_var (unbiased)");
}
