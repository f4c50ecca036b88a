// apps/checkpoint.cpp: see checkpoint.h.
#include "apps/checkpoint.h"

#include <filesystem>

#include "core/config.h"
#include "core/file_io.h"
#include "core/safetensors.h"

namespace scconv::apps {

namespace fs = std::filesystem;

nlohmann::json TrainState::to_json() const {
  return {{"epoch", epoch}, {"step_in_epoch", step_in_epoch}, {"global_step", global_step},
          {"best_acc", best_acc}, {"best_epoch", best_epoch}, {"history", history}, {"partial", partial}};
}

TrainState TrainState::from_json(const nlohmann::json& j) {
  TrainState s;
  s.epoch = j.at("epoch");
  s.step_in_epoch = j.at("step_in_epoch");
  s.global_step = j.at("global_step");
  s.best_acc = j.at("best_acc");
  s.best_epoch = j.at("best_epoch");
  s.history = j.at("history");
  s.partial = j.at("partial");
  return s;
}

void save_checkpoint(const std::string& out_dir, const Module& model, const SGD& sgd,
                     const TrainState& state, const nlohmann::json& config) {
  fs::path out(out_dir), tmp = out / "checkpoint.tmp", cur = out / "checkpoint", old = out / "checkpoint.old";
  fs::create_directories(out);
  // A crash mid-swap last time leaves only checkpoint.old: make it current again first.
  if (!fs::exists(cur) && fs::exists(old)) fs::rename(old, cur);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_safetensors((tmp / "model.safetensors").string(), model.state_dict(),
                   {{"config", config.dump()}, {"epoch", std::to_string(state.epoch)}, {"format", "scconv checkpoint"}});
  save_safetensors((tmp / "optimizer.safetensors").string(), sgd.state());
  nlohmann::json st = state.to_json();
  st["config"] = config;
  write_file_atomic((tmp / "state.json").string(), st.dump(1));
  // swap in: the previous checkpoint stays complete until the new one is in place
  std::error_code ec;
  fs::remove_all(old, ec);
  if (fs::exists(cur)) fs::rename(cur, old);
  fs::rename(tmp, cur);
  fsync_dir(out.string());
  fs::remove_all(old, ec);
}

std::string find_checkpoint(const std::string& out_dir) {
  for (const char* name : {"checkpoint", "checkpoint.old"}) {
    fs::path p = fs::path(out_dir) / name;
    if (fs::exists(p / "state.json") && fs::exists(p / "model.safetensors")) return p.string();
  }
  return "";
}

void load_checkpoint(const std::string& dir, Module& model, SGD* sgd, TrainState* state) {
  fs::path d(dir);
  model.load_state_dict(load_safetensors((d / "model.safetensors").string()).tensors, true,
                        (d / "model.safetensors").string());
  if (sgd) sgd->load_state(load_safetensors((d / "optimizer.safetensors").string()).tensors,
                           (d / "optimizer.safetensors").string());
  if (state) {
    try {
      *state = TrainState::from_json(config::read_json_file((d / "state.json").string()));
    } catch (const nlohmann::json::exception& e) {
      SCCONV_FAIL((d / "state.json").string() << ": malformed checkpoint state: " << e.what());
    }
  }
}

nlohmann::json checkpoint_config(const std::string& model_file) {
  SafetensorsFile f = load_safetensors(model_file);
  auto it = f.metadata.find("config");
  SCCONV_CHECK(it != f.metadata.end(), model_file << ": no training config in its metadata (not written by scconv train?)");
  return nlohmann::json::parse(it->second);
}

}  // namespace scconv::apps
