// apps/checkpoint.cpp: see checkpoint.h.
#include "apps/checkpoint.h"

#include <filesystem>

#include "core/config.h"
#include "core/file_io.h"
#include "core/math/pixels.h"

namespace scconv::apps {

namespace fs = std::filesystem;

// ---- the state: written as JSON, read back with every key and value checked ----------------------

nlohmann::json TrainState::to_json() const {
  nlohmann::json p = nlohmann::json::object();
  if (step_in_epoch > 0)
    p = {{"loss_sum", partial.loss_sum}, {"correct", partial.correct}, {"seen", partial.seen}, {"wait", partial.wait},
         {"seconds", partial.seconds}, {"skipped", partial.skipped}};
  return {{"epoch", epoch}, {"step_in_epoch", step_in_epoch}, {"global_step", global_step},
          {"best_acc", best_acc}, {"best_epoch", best_epoch}, {"history", history}, {"partial", p}};
}

namespace {
void require_keys(const config::Reader& r, std::initializer_list<const char*> keys) {
  for (const char* k : keys) SCCONV_CHECK(r.has(k), "missing key '" << r.key_path(k) << "'");
}
double non_negative(const config::Reader& r, const char* key) {
  const double v = r.num(key, 0);
  SCCONV_CHECK(v >= 0, r.key_path(key) << ": must be >= 0, got " << v);
  return v;
}
double fraction(const config::Reader& r, const char* key) {
  const double v = r.num(key, 0);
  SCCONV_CHECK(v >= 0 && v <= 1, r.key_path(key) << ": must be in [0, 1], got " << v);
  return v;
}

// One metrics object of the history (what the summary and metrics.jsonl are made of).
void check_epoch_metrics(const nlohmann::json& m, int64_t epoch) {
  config::Reader r(m, "history[" + std::to_string(epoch - 1) + "]");
  r.only({"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "val_loss", "val_acc", "lr",
          "epoch_seconds", "eval_seconds", "images_per_second", "data_wait_seconds", "skipped_steps", "gates",
          "sru_threshold"});
  require_keys(r, {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds"});
  SCCONV_CHECK(r.integer("epoch", 0, 0, INT64_MAX) == epoch, r.key_path("epoch") << ": expected " << epoch);
  for (const char* k : {"train_loss", "test_loss", "val_loss", "lr", "epoch_seconds", "eval_seconds", "images_per_second",
                        "data_wait_seconds"})
    if (r.has(k)) non_negative(r, k);
  for (const char* k : {"train_acc", "test_acc", "val_acc", "sru_threshold"})
    if (r.has(k)) fraction(r, k);
  r.integer("skipped_steps", 0, 0, INT64_MAX);
  if (!r.has("gates")) return;
  config::Reader gates = r.child("gates");  // {"layer1.0.conv1": {"informative_fraction": f, "beta1": f}}
  for (auto& [unit, v] : gates.value().items()) {
    SCCONV_CHECK(v.is_object(), gates.key_path(unit.c_str()) << ": expected an object");
    config::Reader u = gates.child(unit.c_str());
    u.only({"informative_fraction", "beta1"});
    for (const char* k : {"informative_fraction", "beta1"})
      if (u.has(k)) fraction(u, k);
  }
}

EpochSums read_partial(const config::Reader& r) {
  EpochSums p;
  if (r.value().empty()) return p;  // at an epoch boundary
  r.only({"loss_sum", "correct", "seen", "wait", "seconds", "skipped"});
  require_keys(r, {"loss_sum", "correct", "seen", "wait", "seconds"});
  p.loss_sum = non_negative(r, "loss_sum");
  p.wait = non_negative(r, "wait");
  p.seconds = non_negative(r, "seconds");
  p.seen = r.integer("seen", 0, 0, INT64_MAX);
  p.correct = r.integer("correct", 0, 0, p.seen);
  p.skipped = r.integer("skipped", 0, 0, INT64_MAX);
  return p;
}
}  // namespace

TrainState TrainState::from_json(const nlohmann::json& j, const std::string& source) {
  try {
    config::Reader r(j, "");
    r.only({"epoch", "step_in_epoch", "global_step", "best_acc", "best_epoch", "history", "partial", "config"});
    require_keys(r, {"epoch", "step_in_epoch", "global_step", "best_acc", "best_epoch", "history", "partial"});
    TrainState s;
    s.epoch = r.integer("epoch", 0, 0, 1000000);
    s.step_in_epoch = r.integer("step_in_epoch", 0, 0, INT32_MAX);
    s.global_step = r.integer("global_step", 0, 0, INT64_MAX);
    s.best_acc = r.num("best_acc", -1);
    SCCONV_CHECK(s.best_acc == -1 || (s.best_acc >= 0 && s.best_acc <= 1), "best_acc: must be -1 or in [0, 1]");
    s.best_epoch = r.integer("best_epoch", 0, 0, s.epoch);
    const nlohmann::json& h = j.at("history");
    SCCONV_CHECK(h.is_array() && static_cast<int64_t>(h.size()) == s.epoch,
                 "history: expected a list of " << s.epoch << " per-epoch metrics (one per completed epoch), got "
                                                << config::brief(h));
    for (size_t e = 0; e < h.size(); ++e) check_epoch_metrics(h[e], static_cast<int64_t>(e) + 1);
    s.history = h;
    s.partial = read_partial(r.child("partial"));
    SCCONV_CHECK(j.at("partial").empty() == (s.step_in_epoch == 0),
                 "partial: running sums " << (s.step_in_epoch > 0 ? "missing for" : "given without") << " step "
                                          << s.step_in_epoch << " of the epoch");
    SCCONV_CHECK(s.global_step >= s.step_in_epoch, "global_step " << s.global_step << " is smaller than step_in_epoch");
    return s;
  } catch (const Error& e) {
    throw Error(source + ": malformed checkpoint state: " + e.what());
  }
}

// ---- model files ---------------------------------------------------------------------------------

std::map<std::string, std::string> model_metadata(const nlohmann::json& config, int64_t epoch,
                                                  const std::vector<std::string>& classes) {
  return {{"config", config.dump()}, {"epoch", std::to_string(epoch)}, {"format", "scconv checkpoint"},
          {"input", math::kInputConvention}, {"classes", nlohmann::json(classes).dump()}};
}

void check_input_convention(const SafetensorsFile& f, const std::string& path) {
  auto it = f.metadata.find("input");
  if (it == f.metadata.end())
    SCCONV_FAIL(path << ": written by an scconv from before the pixel scaling fix (no \"input\" in its metadata): "
                     << "that version fed models raw 0..255 pixels, so these weights give wrong results with the "
                     << "input convention (pixel / 255 - mean) / std used now; train the model again");
  SCCONV_CHECK(it->second == math::kInputConvention,
               path << ": metadata \"input\" is \"" << it->second << "\"; this scconv feeds models \""
                    << math::kInputConvention << "\"");
}

ModelFile read_model_file(const std::string& path) {
  ModelFile m;
  m.file = load_safetensors(path);
  auto it = m.file.metadata.find("config");
  SCCONV_CHECK(it != m.file.metadata.end(),
               path << ": no training config in its metadata (not written by scconv train); for weights from "
                    << "elsewhere (e.g. PyTorch) give --weights FILE with --model PRESET");
  check_input_convention(m.file, path);
  m.config = config::parse_json(it->second, path + ": metadata \"config\"");
  if (auto c = m.file.metadata.find("classes"); c != m.file.metadata.end()) {
    nlohmann::json names = config::parse_json(c->second, path + ": metadata \"classes\"");
    SCCONV_CHECK(names.is_array(), path << ": metadata \"classes\" must be a list of names");
    for (auto& n : names) {
      SCCONV_CHECK(n.is_string(), path << ": metadata \"classes\" must be a list of names");
      m.classes.push_back(n.get<std::string>());
    }
  }
  return m;
}

void check_finite_state(const Module& model, const std::string& source) {
  const std::string bad = first_nonfinite(model.named_tensors());
  SCCONV_CHECK(bad.empty(), source << ": tensor '" << bad << "' holds NaN or Inf values");
}

// ---- checkpoints ---------------------------------------------------------------------------------

void save_checkpoint(const std::string& out_dir, const Module& model, const SGD& sgd,
                     const TrainState& state, const nlohmann::json& config,
                     const std::vector<std::string>& classes, const WeightAverage* ema) {
  fs::path out(out_dir), tmp = out / "checkpoint.tmp", cur = out / "checkpoint", old = out / "checkpoint.old";
  fs::create_directories(out);
  // A crash mid-swap last time leaves only checkpoint.old: make it current again first.
  if (!fs::exists(cur) && fs::exists(old)) fs::rename(old, cur);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_safetensors((tmp / "model.safetensors").string(), model.state_dict(),
                   model_metadata(config, state.epoch, classes));
  save_safetensors((tmp / "optimizer.safetensors").string(), sgd.state());
  if (ema) {
    std::map<std::string, std::string> meta = model_metadata(config, state.epoch, classes);
    meta["ema_updates"] = std::to_string(ema->updates());
    save_safetensors((tmp / "ema.safetensors").string(), ema->state_dict(), meta);
  }
  nlohmann::json st = state.to_json();
  st["config"] = config;
  write_file_atomic((tmp / "state.json").string(), st.dump(1));
  // swap in: the previous checkpoint stays complete until the new one is in place, and stays
  // as checkpoint.old afterwards (the fallback when checkpoint is damaged later)
  fs::remove_all(old);
  if (fs::exists(cur)) fs::rename(cur, old);
  fs::rename(tmp, cur);
  fsync_dir(out.string());
}

std::vector<std::string> checkpoint_dirs(const std::string& out_dir) {
  std::vector<std::string> out;
  for (const char* name : {"checkpoint", "checkpoint.old"}) {
    fs::path p = fs::path(out_dir) / name;
    std::error_code ec;
    if (fs::exists(p / "state.json", ec) && fs::exists(p / "model.safetensors", ec)) out.push_back(p.string());
  }
  return out;
}

std::string evaluated_model_file(const std::string& ckpt_dir) {
  std::error_code ec;
  const fs::path d(ckpt_dir);
  return (fs::is_regular_file(d / "ema.safetensors", ec) ? d / "ema.safetensors" : d / "model.safetensors").string();
}

std::string find_checkpoint(const std::string& out_dir) {
  std::vector<std::string> dirs = checkpoint_dirs(out_dir);
  return dirs.empty() ? "" : dirs.front();
}

namespace {
// A checkpoint's model file was written with its state.json: its metadata's epoch is the state's.
void check_same_epoch(const SafetensorsFile& f, const std::string& path, int64_t epoch) {
  auto ep = f.metadata.find("epoch");
  SCCONV_CHECK(ep != f.metadata.end() && ep->second == std::to_string(epoch),
               path << ": metadata epoch " << (ep == f.metadata.end() ? "(none)" : ep->second)
                    << " does not match the state's epoch " << epoch << " (files of different checkpoints?)");
}
}  // namespace

void load_checkpoint(const std::string& dir, Module& model, SGD* sgd, TrainState* state, WeightAverage* ema) {
  fs::path d(dir);
  const std::string state_file = (d / "state.json").string(), model_file = (d / "model.safetensors").string();
  TrainState st = TrainState::from_json(config::read_json_file(state_file), state_file);
  SafetensorsFile weights = load_safetensors(model_file);
  check_input_convention(weights, model_file);
  check_same_epoch(weights, model_file, st.epoch);
  model.load_state_dict(weights.tensors, true, model_file);
  check_finite_state(model, model_file);
  if (sgd) {
    const std::string opt_file = (d / "optimizer.safetensors").string();
    sgd->load_state(load_safetensors(opt_file).tensors, opt_file);
  }
  if (ema) {
    const std::string ema_file = (d / "ema.safetensors").string();
    SCCONV_CHECK(fs::exists(ema_file), ema_file << ": missing (the config has ema.decay, but this checkpoint holds no "
                                                   "weight average: was the run started without it?)");
    SafetensorsFile avg = load_safetensors(ema_file);
    check_same_epoch(avg, ema_file, st.epoch);
    auto u = avg.metadata.find("ema_updates");
    SCCONV_CHECK(u != avg.metadata.end() && !u->second.empty() &&
                     u->second.find_first_not_of("0123456789") == std::string::npos && u->second.size() < 19,
                 ema_file << ": metadata 'ema_updates' is missing or not a count");
    ema->load_state_dict(avg.tensors, std::stoll(u->second), ema_file);
  }
  if (state) *state = st;
}

std::string load_newest_checkpoint(const std::string& out_dir, Module& model, SGD* sgd, TrainState* state,
                                   WeightAverage* ema) {
  std::vector<std::string> dirs = checkpoint_dirs(out_dir), problems;
  SCCONV_CHECK(!dirs.empty(), "--resume: no checkpoint in '" << out_dir << "/checkpoint'");
  for (const std::string& dir : dirs) {
    try {
      load_checkpoint(dir, model, sgd, state, ema);
      if (problems.empty()) return dir;
      // the damaged newest goes aside (kept for inspection), the one that loaded becomes current:
      // the next checkpoint swap must not turn the damaged one into checkpoint.old
      const fs::path out(out_dir), damaged = out / "checkpoint.damaged", cur = out / "checkpoint";
      fs::remove_all(damaged);
      fs::rename(cur, damaged);
      fs::rename(dir, cur);
      fsync_dir(out_dir);
      std::fprintf(stderr, "scconv: note: resuming from the previous checkpoint (now %s); the damaged one is in %s\n",
                   cur.string().c_str(), damaged.string().c_str());
      return cur.string();
    } catch (const Error& e) {
      problems.push_back(e.what());
      std::fprintf(stderr, "scconv: cannot resume from %s: %s\n", dir.c_str(), e.what());
    }
  }
  std::string all;
  for (auto& p : problems) all += "\n  " + p;
  SCCONV_FAIL("--resume: no usable checkpoint in '" << out_dir << "':" << all);
}

nlohmann::json resume_config(const std::string& out_dir) {
  std::vector<std::string> dirs = checkpoint_dirs(out_dir);
  SCCONV_CHECK(!dirs.empty(), "--resume: no checkpoint in '" << out_dir << "/checkpoint'");
  std::string problems;
  for (const std::string& dir : dirs) {
    const std::string f = dir + "/state.json";
    try {
      nlohmann::json j = config::read_json_file(f);
      SCCONV_CHECK(j.is_object() && j.contains("config") && j["config"].is_object(),
                   f << ": malformed checkpoint state: missing key 'config' (the training config)");
      return j["config"];
    } catch (const Error& e) {
      problems += std::string("\n  ") + e.what();
    }
  }
  SCCONV_FAIL("--resume: no readable checkpoint state in '" << out_dir << "':" << problems);
}

}  // namespace scconv::apps
