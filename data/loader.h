// data/loader.h: batches for training and evaluation. Each image is cropped (zero padding),
// flipped, normalised and optionally cut out on the fly, a row at a time from uint8 to float
// through a lookup table. Where a core is left over by the compute threads, a background thread
// prepares the next batches while the model computes; where the compute threads use every core
// (the usual case: --threads 0), a background thread would only take turns with them, and each
// turn stalls the whole thread pool at its next barrier, so `next` builds the batch itself, its
// images split over the pool (~1 ms for 128 CIFAR images on 2 cores). `next` reports how long
// the caller waited either way.
// Determinism: the epoch's order and each image's augmentation are functions of (seed, epoch,
// dataset index) only, through the counter-based generator of core/math/random.h, so the
// same seed gives the same batches for any thread count, and an epoch can be resumed at any
// batch.
#pragma once
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "data/dataset.h"

namespace scconv {

struct AugmentOptions {
  int64_t crop_padding = 4;  // random crop of the zero-padded image; 0: off
  bool flip = true;          // random horizontal flip
  int64_t cutout = 0;        // side of a zeroed square at a random centre; 0: off
  // per channel, for pixels scaled to [0, 1]: x = (pixel / 255 - mean) / std (core/math/pixels.h)
  std::vector<double> mean{0.4914, 0.4822, 0.4465}, std{0.2470, 0.2435, 0.2616};
};

// One image: src uint8 (C, H, W) -> dst float (C, H, W), normalised as (p / 255 - mean) / std;
// augmented when `augment` (crop of the zero-padded image, flip, cutout after normalising).
void prepare_image(const uint8_t* src, int64_t C, int64_t H, int64_t W, float* dst,
                   const AugmentOptions& o, bool augment, uint64_t seed, int64_t epoch, int64_t index);

// The images mirrored left to right: float (N, C, H, W) on the CPU -> a new (N, C, H, W).
// (Flip test-time augmentation: apps/trainer.h TestTimeAugment.)
Tensor mirrored(const Tensor& x);

// The order of an epoch: a permutation of [0, n) drawn from (seed, epoch), or the identity.
std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch);

class Loader {
 public:
  // train: shuffle and augment. Batches keep the final partial batch (as PyTorch's default).
  Loader(const Dataset& data, int64_t batch, bool train, const AugmentOptions& o, uint64_t seed);
  ~Loader();
  int64_t batches_per_epoch() const { return data_.size() / batch_ + (data_.size() % batch_ != 0); }  // (no overflow)
  // Batches in page-locked memory, so that their upload to a GPU runs asynchronously (set
  // before start_epoch; plain memory where no GPU runtime is there).
  void pin_memory(bool on) { pin_ = on; }
  // Background thread or batches built in `next` (default: background only when the thread pool
  // leaves a core free). The batches are the same either way.
  void set_background(bool on) { background_ = on; }
  // Starts producing the batches of `epoch` from batch `first` on.
  void start_epoch(int64_t epoch, int64_t first = 0);
  // The next batch: x float (B, C, H, W), y int64 (B). False at the end of the epoch.
  bool next(Tensor& x, Tensor& y, double* wait_seconds = nullptr);
  // Builds batch `b` of `epoch` directly (what the background thread does).
  void make_batch(int64_t epoch, int64_t b, const std::vector<int64_t>& order, Tensor& x, Tensor& y) const;

 private:
  void stop();
  const Dataset& data_;
  int64_t batch_;
  bool train_;
  bool pin_ = false;
  AugmentOptions o_;
  uint64_t seed_;
  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Tensor, Tensor>> ready_;
  bool done_ = true, stopping_ = false;
  std::string error_;
  bool background_;
  // built in next(): the epoch, its order and the next batch
  int64_t epoch_ = 0, next_batch_ = 0;
  std::vector<int64_t> order_;
  static constexpr size_t kDepth = 3;
};

}  // namespace scconv
