// apps/cmd_explain.cpp: `scconv explain`: what the SRU and CRU of a trained model do with given
// images, as tensors, statistics and figures (docs/scconv.md, "Looking inside a trained model").
//   scconv explain --checkpoint runs/quick --image 17 --image 3 --out explain/
//   scconv explain --model resnet20-scconv --weights W.safetensors --image cat.png --out explain/
// For each SCConv unit (default: all; --layer NAME selects) it writes into OUT/<unit>/:
//   tensors.safetensors  every captured tensor as "<SRU|CRU>.<name>" (layers/capture.h), float32
//   stats.json           per-channel w, informative fraction, mean beta1 / beta2; their means;
//                        parameters and MACs split SRU / CRU
//   *.png                the figures of apps/explain_figures.cpp
// --image N indexes the test set (the checkpoint's data, or --data); anything else is an image
// file (PNG, JPEG, BMP), resized to the model's input size with a note when it differs.
#include <filesystem>
#include <iostream>

#include "apps/explain.h"
#include "apps/model_args.h"
#include "apps/trainer.h"
#include "core/device.h"
#include "core/file_io.h"
#include "core/parallel.h"
#include "core/safetensors.h"
#include "models/resnet.h"

namespace scconv::apps {

namespace fs = std::filesystem;

namespace {
struct Inputs {
  Tensor images;                  // uint8 (N, 3, H, W): what the figures show
  Tensor x;                       // float32 (N, 3, H, W): normalised, what the model sees
  std::vector<std::string> tags;  // "test17", "cat"
  std::vector<nlohmann::json> info;
};

bool is_index(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

// The image file `path` decoded to (3, H, W), resized (with a note on stderr) when its size differs.
std::vector<uint8_t> image_file(const std::string& path, int64_t H, int64_t W) {
  const std::string bytes = read_file(path, kMaxImageFileBytes);
  std::vector<uint8_t> planar(size_t(3 * H * W));
  ImageFolderOptions o{H, W, false, false};
  std::string bad = decode_image(bytes, o, planar.data());
  if (bad.rfind("size ", 0) == 0) {  // another size: resized, and said so
    std::cerr << "scconv explain: note: " << path << " is " << bad.substr(5, bad.find(',') - 5) << " pixels, not the model's "
              << W << "x" << H << ": resized (bilinear)\n";
    o.resize = true;
    bad = decode_image(bytes, o, planar.data());
  }
  SCCONV_CHECK(bad.empty(), "--image " << path << ": " << bad);
  return planar;
}

Inputs read_inputs(const std::vector<std::string>& specs, const TrainConfig& cfg, const std::string& data_dir,
                   const std::vector<std::string>& classes) {
  const int64_t H = cfg.image_h, W = cfg.image_w;
  Dataset test;
  bool loaded = false;
  Inputs in;
  std::vector<uint8_t> all;
  for (const std::string& s : specs) {
    std::vector<uint8_t> px;
    if (is_index(s)) {
      if (!loaded) test = load_test_set(cfg, data_dir, classes), loaded = true;
      const int64_t n = test.size();
      const int64_t i = s.size() > 18 ? n : std::stoll(s);
      SCCONV_CHECK(i < n, "--image " << s << ": the test set has " << n << " images (indices 0.." << n - 1 << ")");
      SCCONV_CHECK(test.images.size(2) == H && test.images.size(3) == W,
                   "--image " << s << ": the test images are " << test.images.size(3) << "x" << test.images.size(2)
                              << ", the model takes " << W << "x" << H);
      const uint8_t* p = test.images.data<uint8_t>() + i * 3 * H * W;
      px.assign(p, p + 3 * H * W);
      const int64_t label = test.labels.data<int64_t>()[i];
      in.tags.push_back("test" + s);
      in.info.push_back({{"image", s}, {"test_index", i}, {"label", label},
                         {"class", size_t(label) < test.classes.size() ? test.classes[size_t(label)] : ""}});
    } else {
      px = image_file(s, H, W);
      in.tags.push_back(fs::path(s).stem().string());
      in.info.push_back({{"image", s}});
    }
    all.insert(all.end(), px.begin(), px.end());
  }
  const int64_t N = int64_t(specs.size());
  in.images = Tensor::zeros({N, 3, H, W}, DType::U8);
  std::copy(all.begin(), all.end(), in.images.data<uint8_t>());
  in.x = Tensor::zeros({N, 3, H, W}, DType::F32);
  for (int64_t n = 0; n < N; ++n)
    prepare_image(in.images.data<uint8_t>() + n * 3 * H * W, 3, H, W, in.x.data<float>() + n * 3 * H * W, cfg.augment,
                  false, 0, 0, n);
  return in;
}

// tensors.safetensors of one unit: the SRU's and the CRU's captures, float32.
void write_tensors(const std::string& path, const SCConvUnit& u, const Capture& cap) {
  std::map<std::string, Tensor> out;
  for (auto [prefix, m] : {std::pair<const char*, const Module*>{"SRU.", u.sru}, {"CRU.", u.cru}}) {
    if (!m) continue;
    for (auto& [n, t] : cap.of(m->name())) out[prefix + n] = t.to(DType::F32);
  }
  save_safetensors(path, out, {{"unit", u.name}});
}
}  // namespace

int cmd_explain(const Args& args) {
  ArgParser p("explain", "what the SRU and CRU of a trained model do with given images: tensors, statistics, figures");
  declare_trained_model_options(p);
  p.option("--image", "a test-set index or an image file (PNG/JPEG/BMP); repeatable (default: test image 0)", true, true);
  p.option("--layer", "an SCConv unit by name (e.g. layer1.0.conv1); repeatable (default: every unit)", true, true);
  p.option("--data", "data directory for --image N (default: the one the model was trained on)");
  p.option("--out", "output directory (one folder per unit)");
  p.option("--threads", "threads (default: all cores)");
  p.option("--device", "cpu (default), cuda or cuda:N");
  p.option("--json", "print a JSON summary of the files written", false);
  if (!p.parse(args)) return 0;
  p.require({"--out"});
  const DeviceSpec device = parse_device(p.get("--device", "cpu"));
  select_device(device);
  const TrainedModel tm = trained_model_from(p);
  set_num_threads(p.get_int("--threads", 0, 0, kMaxThreads));
  Generator g(0);
  auto model = build_model(tm.cfg.model, g);
  model->load_state_dict(tm.weights.tensors, true, tm.file);
  check_finite_state(*model, tm.file);
  const std::vector<SCConvUnit> units = select_units(*model, p.all("--layer"));
  model->to(device.type);
  std::vector<std::string> specs = p.all("--image");
  if (specs.empty()) specs = {"0"};
  const Inputs in = read_inputs(specs, tm.cfg, p.get("--data"), tm.classes);

  Capture cap;
  const Tensor logits = capture_units(*model, units, in.x, cap);  // (N, classes)
  const std::vector<int64_t> pred = argmax_rows(logits);
  const auto macs = macs_by_module(*model, slice(in.x, 0, 0, 1));
  const fs::path out = p.get("--out");
  nlohmann::json summary{{"model_file", tm.file}, {"out", out.string()}, {"images", nlohmann::json::array()},
                         {"units", nlohmann::json::array()}};
  for (size_t n = 0; n < in.info.size(); ++n) {
    nlohmann::json im = in.info[n];
    im["tag"] = in.tags[n];
    im["predicted"] = pred[n];
    if (size_t(pred[n]) < tm.classes.size()) im["predicted_class"] = tm.classes[size_t(pred[n])];
    summary["images"].push_back(im);
  }
  for (const SCConvUnit& u : units) {
    const fs::path dir = out / u.name;
    fs::create_directories(dir);
    const UnitStats s = unit_stats(u, cap);
    nlohmann::json stats = stats_json(u, s, macs);
    stats["images"] = summary["images"];
    write_tensors((dir / "tensors.safetensors").string(), u, cap);
    write_file_atomic((dir / "stats.json").string(), stats.dump(2) + "\n");
    std::vector<std::string> files{(dir / "tensors.safetensors").string(), (dir / "stats.json").string()};
    for (auto& f : write_unit_figures(dir.string(), u, cap, s, in.images, in.tags)) files.push_back(f);
    summary["units"].push_back({{"unit", u.name}, {"files", files},
                                {"mean_informative_fraction", stats.contains("sru") ? stats["sru"]["mean_informative_fraction"] : nlohmann::json()},
                                {"mean_beta1", stats.contains("cru") ? stats["cru"]["mean_beta1"] : nlohmann::json()}});
    if (!p.has("--json"))
      std::cout << u.name << ": " << files.size() << " files in " << dir.string() << "\n";
  }
  if (p.has("--json")) std::cout << summary.dump(2) << "\n";
  return 0;
}

}  // namespace scconv::apps
