// apps/train_config.cpp: see train_config.h.
#include "apps/train_config.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/backend.h"
#include "core/config.h"
#include "core/device.h"
#include "core/parallel.h"

namespace scconv::apps {

Precision effective_precision(const std::string& name, Device device) {
  const Precision p = parse_precision(name);
  if (p == Precision::Float32) return p;
  const char* why = device != Device::CPU ? "the CUDA backend multiplies in float32 for now"
                    : !cpu_bf16_available() ? "this CPU has no native bfloat16 (AVX512_BF16 or AMX)"
                                            : nullptr;
  if (!why) return p;
  static bool said = false;
  if (!said) std::fprintf(stderr, "precision bf16: %s; running float32\n", why);
  said = true;
  return Precision::Float32;
}

namespace {
std::vector<double> num_list(const config::Reader& r, const char* key, std::vector<double> fallback) {
  if (!r.has(key)) return fallback;
  const auto& v = r.value().at(key);
  SCCONV_CHECK(v.is_array(), r.key_path(key) << ": expected a list of numbers, got " << config::brief(v));
  std::vector<double> out;
  for (auto& e : v) {
    SCCONV_CHECK(e.is_number(), r.key_path(key) << ": expected a list of numbers, got " << config::brief(v));
    out.push_back(e.get<double>());
  }
  return out;
}

nlohmann::json find_preset(const std::string& sub, const std::string& name, const char* option) {
  namespace fs = std::filesystem;
  SCCONV_CHECK(!name.empty() && name.find('/') == std::string::npos,
               option << ": preset names are plain names like resnet20, got '" << name << "'");
  std::vector<fs::path> dirs{fs::path("configs") / sub};
#ifdef SCCONV_SOURCE_DIR_APPS
  dirs.push_back(fs::path(SCCONV_SOURCE_DIR_APPS) / "configs" / sub);
#endif
  for (auto& d : dirs) {
    std::error_code ec;  // (a name too long for the file system is just not a preset)
    if (fs::exists(d / (name + ".json"), ec)) return config::read_json_file((d / (name + ".json")).string());
  }
  SCCONV_FAIL(option << ": no preset '" << name << "' in configs/" << sub << "/");
}
}  // namespace

nlohmann::json load_train_preset(const std::string& name) { return find_preset("train", name, "--config"); }

TestTimeAugment parse_tta(const std::string& name, const std::string& key) {
  if (name == "none") return TestTimeAugment::None;
  if (name == "flip") return TestTimeAugment::Flip;
  SCCONV_FAIL(key << ": unknown value '" << name << "' (known: none, flip)");
}

const char* tta_name(TestTimeAugment t) { return t == TestTimeAugment::Flip ? "flip" : "none"; }

TrainConfig parse_train_config(const nlohmann::json& j, const std::string& source) {
  try {
    TrainConfig c;
    config::Reader r(j, "");
    r.only({"model", "data", "optim", "schedule", "epochs", "batch_size", "seed", "threads",
            "conv_algorithm", "precision", "cudnn_search", "deterministic", "device", "nonfinite", "explain", "ema",
            "eval", "out"});
    SCCONV_CHECK(r.has("model"), "missing key 'model' (a model config object or a preset name)");
    const auto& m = j.at("model");
    c.model_json = m.is_string() ? load_model_preset(m.get<std::string>()) : m;
    try {
      c.model = parse_model_config(c.model_json);
    } catch (const Error& e) {  // the model config's dotted keys, as keys of the training config
      const std::string what = e.what();
      for (const char* form : {"unknown key '", "missing key '"})
        if (what.rfind(form, 0) == 0) throw Error(form + std::string("model.") + what.substr(std::strlen(form)));
      throw Error("model." + what);
    }
    config::Reader d = r.child("data");
    d.only({"dataset", "dir", "val_split", "augment", "mean", "std", "image_size", "resize", "skip_bad"});
    c.dataset = d.str("dataset", "cifar10");
    SCCONV_CHECK(c.dataset == "cifar10" || c.dataset == "cifar100" || c.dataset == "folder",
                 "data.dataset: unknown value \"" << c.dataset << "\" (accepted: \"cifar10\", \"cifar100\", \"folder\")");
    c.data_dir = d.str("dir", c.dataset == "cifar100" ? "data/cifar-100-binary" : "data/cifar-10-batches-bin");
    c.val_split = d.integer("val_split", 0, 0, INT32_MAX);
    config::Reader a = d.child("augment");
    a.only({"crop_padding", "flip", "cutout"});
    c.augment.crop_padding = a.integer("crop_padding", 4, 0, 1024);
    c.augment.flip = a.boolean("flip", true);
    c.augment.cutout = a.integer("cutout", 0, 0, 8192);
    c.augment.mean = num_list(d, "mean", c.augment.mean);
    c.augment.std = num_list(d, "std", c.augment.std);
    SCCONV_CHECK(c.augment.mean.size() == 3 && c.augment.std.size() == 3, "data.mean and data.std need 3 values (R, G, B)");
    for (double s : c.augment.std) SCCONV_CHECK(s > 0, "data.std: values must be positive");
    std::vector<double> size = num_list(d, "image_size", {32, 32});
    SCCONV_CHECK(size.size() == 2, "data.image_size: expected [H, W]");
    for (double v : size)
      SCCONV_CHECK(v >= 1 && v <= kMaxImageSide && std::floor(v) == v,
                   "data.image_size: expected [H, W] with whole numbers in [1, " << kMaxImageSide << "], got " << v);
    c.image_h = static_cast<int64_t>(size[0]);
    c.image_w = static_cast<int64_t>(size[1]);
    c.resize = d.boolean("resize", false);
    c.skip_bad = d.boolean("skip_bad", true);

    config::Reader o = r.child("optim");
    o.only({"lr", "momentum", "dampening", "nesterov", "weight_decay", "decay_norm_and_bias", "label_smoothing"});
    c.optim.lr = o.num("lr", 0.05);
    c.optim.momentum = o.num("momentum", 0.9);
    c.optim.dampening = o.num("dampening", 0);
    c.optim.nesterov = o.boolean("nesterov", false);
    c.optim.weight_decay = o.num("weight_decay", 5e-4);
    c.optim.decay_norm_and_bias = o.boolean("decay_norm_and_bias", true);
    c.label_smoothing = o.num("label_smoothing", 0);
    SCCONV_CHECK(c.optim.lr > 0, "optim.lr: must be > 0, got " << c.optim.lr);
    SCCONV_CHECK(c.optim.momentum >= 0 && c.optim.momentum < 1, "optim.momentum: must be in [0, 1)");
    SCCONV_CHECK(c.optim.weight_decay >= 0, "optim.weight_decay: must be >= 0");
    SCCONV_CHECK(c.label_smoothing >= 0 && c.label_smoothing < 1, "optim.label_smoothing: must be in [0, 1)");
    SCCONV_CHECK(!c.optim.nesterov || (c.optim.momentum > 0 && c.optim.dampening == 0),
                 "optim.nesterov: needs momentum > 0 and dampening 0");

    c.epochs = r.integer("epochs", 200, 1, 1000000);
    config::Reader s = r.child("schedule");
    s.only({"kind", "milestones", "gamma", "warmup_epochs", "warmup_start_factor", "eta_min", "sru_threshold_start"});
    c.schedule.kind = s.str("kind", "multistep");
    SCCONV_CHECK(c.schedule.kind == "multistep" || c.schedule.kind == "cosine" || c.schedule.kind == "constant",
                 "schedule.kind: unknown value \"" << c.schedule.kind << "\" (accepted: \"multistep\", \"cosine\", \"constant\")");
    c.schedule.milestones.clear();
    for (double v : num_list(s, "milestones", {100, 150})) {
      SCCONV_CHECK(v >= 0 && v <= 1000000 && std::floor(v) == v,
                   "schedule.milestones: expected epochs (whole numbers in [0, 1000000]), got " << v);
      c.schedule.milestones.push_back(static_cast<int64_t>(v));
    }
    c.schedule.gamma = s.num("gamma", 0.1);
    c.schedule.warmup_epochs = s.num("warmup_epochs", 0);
    c.schedule.warmup_start_factor = s.num("warmup_start_factor", 0.1);
    c.schedule.eta_min = s.num("eta_min", 0);
    c.schedule.epochs = c.epochs;
    SCCONV_CHECK(c.schedule.warmup_epochs >= 0, "schedule.warmup_epochs: must be >= 0");
    SCCONV_CHECK(c.schedule.warmup_start_factor > 0 && c.schedule.warmup_start_factor <= 1,
                 "schedule.warmup_start_factor: must be in (0, 1]");
    if (s.has("sru_threshold_start")) {
      const double t0 = s.num("sru_threshold_start", 0);
      SCCONV_CHECK(t0 > 0 && t0 < 1, "schedule.sru_threshold_start: must be in (0, 1), got " << t0);
      SCCONV_CHECK(c.model.use_scconv, "schedule.sru_threshold_start: the model has no SCConv units");
      SCCONV_CHECK(t0 <= c.model.scconv.sru.threshold,
                   "schedule.sru_threshold_start: " << t0 << " is above the model's scconv.sru.threshold "
                                                    << c.model.scconv.sru.threshold << ", where the warm-up ends");
      c.sru_threshold_start = t0;
    }
    c.batch_size = r.integer("batch_size", 128, 2, 65536);  // (>= 2: batch norm needs two values)
    c.seed = r.integer("seed", 0, INT64_MIN, INT64_MAX);
    c.threads = r.integer("threads", 0, 0, kMaxThreads);  // 0: all cores
    c.conv_algorithm = r.str("conv_algorithm", "auto");
    parse_conv_algorithm(c.conv_algorithm);  // the error names the key and the known values
    c.precision = r.str("precision", "fp32");
    parse_precision(c.precision);
    c.cudnn_search = r.str("cudnn_search", "heuristic");
    SCCONV_CHECK(c.cudnn_search == "heuristic" || c.cudnn_search == "measure",
                 "cudnn_search: unknown value '" << c.cudnn_search << "' (known: heuristic, measure)");
    c.deterministic = r.boolean("deterministic", false);
    c.device = r.str("device", "cpu");
    parse_device(c.device);  // the error names the known forms
    config::Reader nf = r.child("nonfinite");
    nf.only({"action", "max_consecutive_skips"});
    const std::string action = nf.str("action", "stop");
    SCCONV_CHECK(action == "stop" || action == "skip",
                 "nonfinite.action: unknown value \"" << action << "\" (accepted: \"stop\", \"skip\")");
    c.nonfinite = action == "skip" ? NonfiniteAction::Skip : NonfiniteAction::Stop;
    c.max_consecutive_skips = nf.integer("max_consecutive_skips", 20, 1, 1000000);
    config::Reader ex = r.child("explain");
    ex.only({"every", "images"});
    c.explain_every = ex.integer("every", 0, 0, 1000000);
    c.explain_images = ex.integer("images", 100, 1, 10000);
    config::Reader em = r.child("ema");
    em.only({"decay"});
    c.ema_decay = em.num("decay", 0);
    SCCONV_CHECK(c.ema_decay >= 0 && c.ema_decay < 1, "ema.decay: must be in [0, 1) (0: no weight average), got " << c.ema_decay);
    config::Reader ev = r.child("eval");
    ev.only({"tta"});
    c.tta = parse_tta(ev.str("tta", "none"), "eval.tta");
    c.out = r.str("out", "runs/default");
    SCCONV_CHECK(!c.out.empty(), "out: must name a directory");
    return c;
  } catch (const Error& e) {
    if (source.empty()) throw;
    throw Error(source + ": " + e.what());
  }
}

double TrainConfig::sru_threshold(int64_t epoch) const {
  const double t = model.scconv.sru.threshold;
  if (!sru_threshold_start) return t;
  return std::min(t, *sru_threshold_start + (t - *sru_threshold_start) * double(epoch) / double(epochs));
}

void expand_model_preset_for(nlohmann::json& j, const std::string& dotted_key) {
  if (dotted_key.rfind("model.", 0) == 0 && j.is_object() && j.contains("model") && j["model"].is_string())
    j["model"] = load_model_preset(j["model"].get<std::string>());
}

void apply_train_set(nlohmann::json& j, const std::string& assignment) {
  expand_model_preset_for(j, assignment.substr(0, assignment.find('=')));
  config::apply_set(j, assignment);
}

nlohmann::json TrainConfig::to_json() const {
  std::vector<int64_t> ms = schedule.milestones;
  nlohmann::json data{{"dataset", dataset}, {"dir", data_dir}, {"val_split", val_split},
                      {"augment", {{"crop_padding", augment.crop_padding}, {"flip", augment.flip}, {"cutout", augment.cutout}}},
                      {"mean", augment.mean}, {"std", augment.std}};
  if (dataset == "folder") {
    data["image_size"] = {image_h, image_w};
    data["resize"] = resize;
    data["skip_bad"] = skip_bad;
  }
  nlohmann::json sched{{"kind", schedule.kind}, {"milestones", ms}, {"gamma", schedule.gamma},
                       {"warmup_epochs", schedule.warmup_epochs}, {"warmup_start_factor", schedule.warmup_start_factor},
                       {"eta_min", schedule.eta_min}};
  if (sru_threshold_start) sched["sru_threshold_start"] = *sru_threshold_start;
  return {{"model", model.to_json()},
          {"data", data},
          {"optim", {{"lr", optim.lr}, {"momentum", optim.momentum}, {"dampening", optim.dampening},
                     {"nesterov", optim.nesterov}, {"weight_decay", optim.weight_decay},
                     {"decay_norm_and_bias", optim.decay_norm_and_bias}, {"label_smoothing", label_smoothing}}},
          {"schedule", sched},
          {"epochs", epochs}, {"batch_size", batch_size}, {"seed", seed}, {"threads", threads},
          {"conv_algorithm", conv_algorithm}, {"precision", precision}, {"cudnn_search", cudnn_search}, {"deterministic", deterministic},
          {"device", device},
          {"nonfinite", {{"action", nonfinite == NonfiniteAction::Skip ? "skip" : "stop"},
                         {"max_consecutive_skips", max_consecutive_skips}}},
          {"explain", {{"every", explain_every}, {"images", explain_images}}},
          {"ema", {{"decay", ema_decay}}},
          {"eval", {{"tta", tta_name(tta)}}},
          {"out", out}};
}

}  // namespace scconv::apps
