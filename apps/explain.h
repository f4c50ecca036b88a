// apps/explain.h: what `scconv explain` (apps/cmd_explain.cpp) and the trainer's gate
// statistics (`explain.every`) compute from a model's SCConv units: the captured intermediates
// of one forward (layers/capture.h), per-channel statistics, and the figures
// (apps/explain_figures.cpp). docs/scconv.md's walkthrough shows the figures of a real run.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/capture.h"
#include "layers/scconv.h"

namespace scconv::apps {

// An SCConv module of the model ("layer1.0.conv1") and its SRU and CRU (either may be absent:
// scconv.order "S" or "C").
struct SCConvUnit {
  std::string name;
  const Module* module = nullptr;
  const SRU* sru = nullptr;
  const CRU* cru = nullptr;
};
// Every SCConv module of the model in forward order.
std::vector<SCConvUnit> scconv_units(const Module& model);
// The units named (every unit when `names` is empty). An unknown name is an Error that lists the
// valid ones; a model without SCConv units is an Error saying so.
std::vector<SCConvUnit> select_units(const Module& model, const std::vector<std::string>& names);

// Runs the model (in eval mode, no gradient) on x (N, 3, H, W) with a capture on every SRU and
// CRU of the units. Returns the logits (N, classes).
Tensor capture_units(Module& model, const std::vector<SCConvUnit>& units, const Tensor& x, Capture& cap);

// ---- statistics (stats.json) ----
struct UnitStats {
  std::vector<double> w;                     // (C) the SRU's channel weights
  std::vector<double> informative_fraction;  // (C) share of positions with R > t, over the images
  std::vector<double> beta1, beta2;          // (c_out) the CRU's fuse weights, mean over the images
  double mean_w = NAN, mean_informative = NAN, mean_beta1 = NAN, mean_beta2 = NAN;
};
UnitStats unit_stats(const SCConvUnit& u, const Capture& cap);
// stats.json's object: the statistics, the unit's options, and its parameters and MACs split
// SRU / CRU (`macs`: per module name, from one recorded forward: layers/summary.h).
nlohmann::json stats_json(const SCConvUnit& u, const UnitStats& s, const std::map<std::string, int64_t>& macs);
// The multiply-accumulates of every module call of one forward of x (per image: x holds one).
std::map<std::string, int64_t> macs_by_module(Module& model, const Tensor& x);

// ---- gate statistics during training (explain.every, apps/trainer.cpp) ----
// Per unit, the layer means of the informative fraction (SRU) and of beta1 (CRU) on the images
// x (N, 3, H, W), run `chunk` images at a time (the means are exact, not per-chunk averages):
//   {"layer1.0.conv1": {"informative_fraction": 0.52, "beta1": 0.49}, ...}
// (a unit without an SRU or a CRU has no such key).
nlohmann::json gate_statistics(Module& model, const std::vector<SCConvUnit>& units, const Tensor& x, int64_t chunk = 25);

// ---- figures (apps/explain_figures.cpp) ----
// The PNG files of one unit in `dir`, for the images of the capture (uint8 (N, 3, H, W) for the
// input figure; `tags` name them in file names: "test17", "cat"). Returns the files written.
std::vector<std::string> write_unit_figures(const std::string& dir, const SCConvUnit& u, const Capture& cap,
                                            const UnitStats& s, const Tensor& images_u8,
                                            const std::vector<std::string>& tags);

}  // namespace scconv::apps
