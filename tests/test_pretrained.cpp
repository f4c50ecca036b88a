// tests/test_pretrained.cpp: the reference models committed in pretrained/ (pretrained/README.md).
// Two ctest entries: test_pretrained checks that every model of pretrained/manifest.json loads
// strictly into the model its metadata describes, is finite, classifies a batch, and records what
// the manifest says (preset, test-time augmentation, accuracy); test_pretrained_accuracy
// (`test_pretrained --accuracy`) evaluates each on the real CIFAR-10 test set and checks the
// recorded accuracy. Without the data set (a fresh clone has none) that one prints where it
// looked and exits 77, which ctest reports as skipped.
// The data set: $SCCONV_CIFAR10_DIR where set, else data/cifar-10-batches-bin or
// ../shared/cifar10/cifar-10-batches-bin beside the source tree.
// Run: ./build/tests/test_pretrained [--accuracy]
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "apps/checkpoint.h"
#include "apps/trainer.h"
#include "core/backend.h"
#include "core/config.h"
#include "models/resnet.h"
#include "hash_init.h"
#include "test_util.h"

using namespace scconv;
using namespace scconv::apps;
namespace fs = std::filesystem;

namespace {

constexpr int kSkipped = 77;  // SKIP_RETURN_CODE in tests/CMakeLists.txt
const fs::path kDir = fs::path(SCCONV_SOURCE_DIR_TESTS) / "pretrained";

nlohmann::json manifest() { return config::read_json_file((kDir / "manifest.json").string()); }

// The folder holding CIFAR-10's test_batch.bin ("" when none of the places has it).
std::string cifar10_dir() {
  std::vector<fs::path> places;
  if (const char* env = std::getenv("SCCONV_CIFAR10_DIR")) {
    places.emplace_back(env);  // (when set, the only place)
  } else {
    places.push_back(fs::path(SCCONV_SOURCE_DIR_TESTS) / "data" / "cifar-10-batches-bin");
    places.push_back(fs::path(SCCONV_SOURCE_DIR_TESTS) / ".." / "shared" / "cifar10" / "cifar-10-batches-bin");
  }
  for (const fs::path& p : places) {
    std::error_code ec;
    if (fs::is_regular_file(p / "test_batch.bin", ec)) return p.string();
  }
  return "";
}

struct Loaded {
  TrainConfig cfg;
  std::shared_ptr<Module> model;
};
Loaded load(const std::string& file) {
  const std::string path = (kDir / file).string();
  ModelFile m = read_model_file(path);
  Loaded l{parse_train_config(m.config, path), nullptr};
  Generator g(0);
  l.model = build_model(l.cfg.model, g);
  l.model->load_state_dict(m.file.tensors, true, path);  // strict: every name and shape
  check_finite_state(*l.model, path);
  CHECK(m.classes.size() == 10);
  return l;
}

}  // namespace

TEST_CASE("pretrained models load into the models they describe and classify") {
  const nlohmann::json all = manifest();
  for (const char* want : {"resnet20-fast"}) {  // (+ resnet20-scconv-fast once it is committed)
    CAPTURE(want);
    REQUIRE(all.contains(want));
  }
  for (auto& [name, e] : all.items()) {
    CAPTURE(name);
    const std::string file = e.at("file");
    CHECK(fs::file_size(kDir / file) < 4u << 20);  // a few MB at most
    Loaded l = load(file);
    CHECK(l.cfg.model.use_scconv == (name.find("scconv") != std::string::npos));
    CHECK(tta_name(l.cfg.tta) == e.at("tta").get<std::string>());
    CHECK(l.cfg.precision == e.at("precision").get<std::string>());
    for (const char* k : {"test_acc", "test_acc_fp32"}) {
      const double acc = e.at(k);
      CHECK(acc > 0.85);
      CHECK(acc <= 1.0);
    }
    CHECK(!e.at("command").get<std::string>().empty());
    l.model->eval();
    autograd::NoGradGuard ng;
    Tensor logits = (*l.model)(testing::hash_uniform(name, {4, 3, 32, 32}, -2, 2, DType::F32));
    CHECK(logits.shape() == Shape{4, 10});
    CHECK(all_finite(logits));
  }
}

TEST_CASE("pretrained models reproduce their recorded test accuracy") {
  const std::string data = cifar10_dir();
  REQUIRE(!data.empty());  // (main skips this case without the data)
  const nlohmann::json all = manifest();
  for (auto& [name, e] : all.items()) {
    CAPTURE(name);
    Loaded l = load(e.at("file"));
    const Dataset test = load_test_set(l.cfg, data, {});
    // the run evaluated in its precision; without native bf16 the model evaluates in float32,
    // recorded apart. Different kernels (AMX or AVX512_BF16, thread counts) sum in other
    // orders: a few images near a tie may change class, hence 5 of 10,000 (0.05%).
    const Precision p = effective_precision(l.cfg.precision, Device::CPU);
    autograd::AutocastGuard autocast(p);
    const double got = evaluate(*l.model, test, l.cfg.augment, l.cfg.tta).accuracy;
    const double want = e.at(p == Precision::BFloat16 ? "test_acc" : "test_acc_fp32");
    MESSAGE(name << ": " << 100 * got << "% (" << std::string(precision_name(p)) << "), recorded " << 100 * want << "%");
    CHECK(std::fabs(got - want) <= 0.0005);
  }
}

int main(int argc, char** argv) {
  bool accuracy = false;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--accuracy") == 0) accuracy = true;
    else args.push_back(argv[i]);
  }
  doctest::Context ctx(static_cast<int>(args.size()), args.data());
  if (accuracy) {
    if (cifar10_dir().empty()) {
      std::printf("test_pretrained --accuracy: SKIPPED (no CIFAR-10 test set: set SCCONV_CIFAR10_DIR, or put "
                  "cifar-10-batches-bin in data/ or ../shared/cifar10/)\n");
      return kSkipped;
    }
    ctx.addFilter("test-case", "*reproduce*");
  } else {
    ctx.addFilter("test-case-exclude", "*reproduce*");
  }
  return ctx.run();
}
