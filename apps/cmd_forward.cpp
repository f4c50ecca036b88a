// apps/cmd_forward.cpp: `scconv forward`: runs a model on inputs from a safetensors file and
// writes the results, so a model can be checked against a PyTorch definition by name.
//   scconv forward --model resnet20 --weights W.safetensors --input X.safetensors
//                  --output Y.safetensors [--train] [--set key=value ...]
// X holds `input` (float32, N x 3 x H x W) and, with --train, `labels` (int64, N).
// Y gets `logits`; with --train the model runs in training mode (batch statistics), computes
// the mean cross-entropy, runs backward and also writes `loss`, `grad.<parameter>` for every
// parameter and `buffer.<buffer>` for every buffer after the running-statistics update.
#include <iostream>

#include "apps/checkpoint.h"
#include "apps/model_args.h"
#include "core/device.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "models/resnet.h"

namespace scconv::apps {

namespace {
Tensor field(const SafetensorsFile& f, const std::string& file, const std::string& name) {
  auto it = f.tensors.find(name);
  SCCONV_CHECK(it != f.tensors.end(), file << ": no tensor '" << name << "'");
  return it->second;
}
}  // namespace

int cmd_forward(const Args& args) {
  ArgParser p("forward", "run a model on safetensors inputs; write logits (and gradients with --train)");
  declare_model_options(p);
  p.option("--weights", "safetensors file of parameters and buffers by name (default: fresh init with --seed)");
  p.option("--non-strict", "load only the names both the model and the weights file have", false);
  p.option("--input", "safetensors file with `input` (float32 N x 3 x H x W) and, for --train, `labels` (int64 N)");
  p.option("--output", "safetensors file to write");
  p.option("--train", "training mode: batch statistics, cross-entropy loss, backward", false);
  p.option("--seed", "initialisation seed when no --weights are given (default 0)");
  p.option("--threads", "threads (default: all cores)");
  p.option("--device", "cpu (default), cuda or cuda:N (the output file is the same either way)");
  if (!p.parse(args)) return 0;
  p.require({"--input", "--output"});
  set_num_threads(p.get_int("--threads", 0, 0, kMaxThreads));
  const DeviceSpec device = parse_device(p.get("--device", "cpu"));
  select_device(device);
  ModelConfig cfg = parse_model_config(model_json_from(p), p.get("--model-config", p.get("--model")));
  Generator g(static_cast<uint64_t>(p.get_int("--seed", 0, 0, INT64_MAX)));
  auto model = build_model(cfg, g);
  if (p.has("--weights")) {
    std::string wpath = p.get("--weights");
    auto skipped = model->load_state_dict(load_safetensors(wpath).tensors, !p.has("--non-strict"), wpath);
    for (auto& s : skipped) std::cerr << "scconv forward: not loaded: " << s << "\n";
    check_finite_state(*model, wpath);
  }
  model->to(device.type);
  const std::string in_path = p.get("--input");
  SafetensorsFile in = load_safetensors(in_path);
  Tensor x = field(in, in_path, "input");
  SCCONV_CHECK(x.dtype() == DType::F32 && x.dim() == 4 && x.size(1) == 3,
               in_path << ": 'input' must be float32 (N, 3, H, W), got " << x.str());
  x = x.to(device.type);
  std::map<std::string, Tensor> out;
  const bool train = p.has("--train");
  model->train(train);
  if (train) {
    Tensor labels = field(in, in_path, "labels");
    SCCONV_CHECK(labels.dtype() == DType::I64 && labels.dim() == 1 && labels.size(0) == x.size(0),
                 in_path << ": 'labels' must be int64 (" << x.size(0) << ",), got " << labels.str());
    Tensor logits = (*model)(x);
    Tensor loss = cross_entropy(logits, labels.to(device.type));
    autograd::backward(loss);
    out["logits"] = logits.detach();
    out["loss"] = loss.detach();
    for (auto& [n, t] : model->named_parameters()) {
      SCCONV_CHECK(t.grad().defined(), "parameter '" << n << "' received no gradient");
      out["grad." + n] = t.grad();
    }
    for (auto& [n, t] : model->named_buffers()) out["buffer." + n] = t;
  } else {
    autograd::NoGradGuard ng;
    out["logits"] = (*model)(x);
  }
  save_safetensors(p.get("--output"), out);
  return 0;
}

}  // namespace scconv::apps
