// apps/ablate_plan.cpp: reading an ablation plan (apps/ablate.h) and expanding it into runs.
// The plan's text is checked by config::parse_json (duplicate keys, depth) and then read again
// in order (nlohmann::ordered_json), since an axis's order is the table's order.
#include <filesystem>
#include <set>

#include "apps/ablate.h"
#include "apps/train_config.h"
#include "core/config.h"
#include "core/error.h"
#include "core/file_io.h"
#include "models/resnet.h"

namespace scconv::apps {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

namespace {

// One value of an axis: its label and the overrides it applies.
struct AxisValue {
  std::string label;
  std::vector<std::pair<std::string, json>> sets;  // (dotted key, value)
};
struct Axis {
  std::string name;
  std::vector<AxisValue> values;
};

json plain(const ojson& v) { return json::parse(v.dump()); }

// Labels become parts of run ids and folder names.
void check_label(const std::string& label, const std::string& what) {
  SCCONV_CHECK(!label.empty() && label[0] != '.', what << ": the label '" << label << "' is empty or starts with '.'");
  for (unsigned char c : label)
    SCCONV_CHECK(c >= 0x20 && c < 0x7f && c != '/' && c != ',' && c != '=' && c != '\\',
                 what << ": the label '" << label << "' holds a character that cannot go into a run id ('/', ',', '=', '\\' "
                      << "or a non-printable one)");
}

std::string label_of(const ojson& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

Axis parse_axis(const std::string& name, const ojson& v, const std::string& file) {
  const std::string what = file + ": axis '" + name + "'";
  Axis a;
  if (v.is_array()) {  // a dotted key and its values
    const size_t dot = name.rfind('.');
    a.name = dot == std::string::npos ? name : name.substr(dot + 1);
    for (const ojson& x : v) {
      SCCONV_CHECK(!x.is_object() && !x.is_null(), what << ": values must be numbers, strings, booleans or lists, got "
                                                        << config::brief(plain(x)));
      a.values.push_back({label_of(x), {{name, plain(x)}}});
    }
  } else {
    SCCONV_CHECK(v.is_object(), what << ": expected a list of values (for a dotted key) or an object of labelled "
                                     << "overrides, got " << config::brief(plain(v)));
    a.name = name;
    for (auto& [label, sets] : v.items()) {
      SCCONV_CHECK(sets.is_object(), what << ", value '" << label << "': expected an object of dotted-key overrides, got "
                                          << config::brief(plain(sets)));
      AxisValue av{label, {}};
      for (auto& [key, x] : sets.items()) av.sets.emplace_back(key, plain(x));
      a.values.push_back(std::move(av));
    }
  }
  check_label(a.name, what);
  SCCONV_CHECK(a.name != "seed", what << ": 'seed' is the plan's own axis (its \"seeds\" list)");
  SCCONV_CHECK(!a.values.empty(), what << " has no values, so the plan would expand to zero runs");
  for (const AxisValue& x : a.values) check_label(x.label, what);
  return a;
}

// The base training config: a preset name, a JSON file (relative to the plan's folder), or an object.
json load_base(const ojson& base, const std::string& file) {
  if (base.is_object()) return plain(base);
  SCCONV_CHECK(base.is_string(), file << ": base: expected a training preset name, a file or an object");
  const std::string b = base.get<std::string>();
  const fs::path rel = fs::path(file).parent_path() / b;
  std::error_code ec;
  if (b.find('/') != std::string::npos || (b.size() > 5 && b.substr(b.size() - 5) == ".json")) {
    const fs::path p = fs::is_regular_file(rel, ec) ? rel : fs::path(b);
    return config::read_json_file(p.string());
  }
  return load_train_preset(b);
}

void apply(json& cfg, const std::string& key, const json& value, const std::string& what) {
  expand_model_preset_for(cfg, key);
  config::set_path(cfg, key, value, what);
}

}  // namespace

AblationPlan load_plan(const std::string& file, const std::string& out, const std::vector<std::string>& sets) {
  const std::string text = read_file(file, config::kMaxFileBytes);
  config::parse_json(text, file);  // the strict checks; the order comes from a second reading
  const ojson j = ojson::parse(text);
  SCCONV_CHECK(j.is_object(), file << ": expected an object");
  for (auto& [k, v] : j.items())
    SCCONV_CHECK(k == "name" || k == "description" || k == "base" || k == "set" || k == "axes" || k == "seeds" || k == "paper",
                 file << ": unknown key '" << k << "' (known: name, description, base, set, axes, seeds, paper)");
  AblationPlan plan;
  plan.file = file;
  plan.name = j.contains("name") && j["name"].is_string() ? j["name"].get<std::string>() : fs::path(file).stem().string();
  SCCONV_CHECK(j.contains("base"), file << ": missing key 'base' (a training preset name, a file or an object)");
  json base;
  try {
    base = load_base(j["base"], file);
  } catch (const Error& e) {
    throw Error(file + ": base: " + e.what());
  }
  if (j.contains("set")) {
    SCCONV_CHECK(j["set"].is_object(), file << ": set: expected an object of dotted-key overrides");
    for (auto& [k, v] : j["set"].items()) apply(base, k, plain(v), file + ": set." + k);
  }
  std::vector<Axis> axes;
  if (j.contains("axes")) {
    SCCONV_CHECK(j["axes"].is_object(), file << ": axes: expected an object of named axes");
    std::set<std::string> names;
    for (auto& [k, v] : j["axes"].items()) {
      axes.push_back(parse_axis(k, v, file));
      SCCONV_CHECK(names.insert(axes.back().name).second, file << ": two axes are named '" << axes.back().name << "'");
      plan.axes.push_back(axes.back().name);
    }
  }
  std::vector<int64_t> seeds;
  if (j.contains("seeds")) {
    SCCONV_CHECK(j["seeds"].is_array() && !j["seeds"].empty(), file << ": seeds: expected a non-empty list of integers");
    for (const ojson& s : j["seeds"]) {
      SCCONV_CHECK(s.is_number_integer(), file << ": seeds: expected integers, got " << config::brief(plain(s)));
      seeds.push_back(s.get<int64_t>());
    }
  } else {
    seeds.push_back(0);
  }
  // every combination of axis values, the first axis outermost
  std::vector<size_t> pick(axes.size(), 0);
  std::set<std::string> ids, built;
  for (bool more = true; more;) {
    AblationCell cell;
    json cfg = base;
    for (size_t a = 0; a < axes.size(); ++a) {
      const AxisValue& v = axes[a].values[pick[a]];
      cell.labels.emplace_back(axes[a].name, v.label);
      cell.id += (a ? "," : "") + axes[a].name + "=" + v.label;
      for (auto& [k, x] : v.sets) apply(cfg, k, x, file + ": axis '" + axes[a].name + "', value '" + v.label + "': " + k);
    }
    for (const std::string& s : sets) apply_train_set(cfg, s);
    for (int64_t seed : seeds) {
      AblationRun r;
      r.id = cell.id + (cell.id.empty() ? "" : ",") + "seed=" + std::to_string(seed);
      SCCONV_CHECK(ids.insert(r.id).second, file << ": two runs have the id '" << r.id << "' (repeated axis values or seeds)");
      r.cell = plan.cells.size();
      r.seed = seed;
      r.config = cfg;
      r.config["seed"] = seed;
      r.config["out"] = (fs::path(out) / "runs" / r.id).string();
      try {
        const TrainConfig tc = parse_train_config(r.config);
        r.config = tc.to_json();
        if (built.insert(r.config["model"].dump()).second) {  // each distinct model built once
          Generator g(0);
          build_model(tc.model, g);
        }
      } catch (const Error& e) {
        throw Error(file + ": run " + r.id + ": " + e.what());
      }
      cell.runs.push_back(plan.runs.size());
      plan.runs.push_back(std::move(r));
    }
    plan.cells.push_back(std::move(cell));
    more = false;  // the next combination, the last axis fastest
    for (size_t a = axes.size(); a-- > 0;) {
      if (++pick[a] < axes[a].values.size()) {
        more = true;
        break;
      }
      pick[a] = 0;
    }
  }
  if (j.contains("paper")) {
    SCCONV_CHECK(j["paper"].is_object(), file << ": paper: expected an object {cell id: percent}");
    for (auto& [k, v] : j["paper"].items()) {
      SCCONV_CHECK(v.is_number(), file << ": paper." << k << ": expected a number (percent)");
      bool found = false;
      for (AblationCell& c : plan.cells)
        if (c.id == k) c.paper = v.get<double>(), found = true;
      std::string known;
      for (const AblationCell& c : plan.cells) known += (known.empty() ? "" : ", ") + c.id;
      SCCONV_CHECK(found, file << ": paper: no cell '" << k << "' (cells: " << known << ")");
    }
  }
  // where and how fast the runs compute is not part of what they are
  std::vector<std::string> identity_sets;
  for (const std::string& a : sets) {
    const std::string key = a.substr(0, a.find('='));
    if (key != "threads" && key != "device") identity_sets.push_back(a);
  }
  plan.identity = {{"plan", config::parse_json(text, file)}, {"set", identity_sets}};
  return plan;
}

void prepare_results_dir(const AblationPlan& plan, const std::string& out) {
  std::error_code ec;
  fs::create_directories(fs::path(out) / ".ablate", ec);
  SCCONV_CHECK(!ec, "--out " << out << ": cannot create the folder (" << ec.message() << ")");
  const fs::path id = fs::path(out) / "ablate.json";
  if (fs::exists(id, ec)) {
    const json have = config::read_json_file(id.string());
    SCCONV_CHECK(have.contains("identity") && have["identity"] == plan.identity,
                 "--out " << out << ": this folder holds the results of another plan ("
                          << have.value("file", std::string("?")) << ", " << id.string()
                          << " records it); use another --out, or the same plan and --set values");
    return;
  }
  write_file_atomic(id.string(), json{{"file", plan.file}, {"name", plan.name}, {"identity", plan.identity}}.dump(2) + "\n");
}

}  // namespace scconv::apps
