// data/loader.cpp: see loader.h.
#include "data/loader.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "core/math/pixels.h"
#include "core/math/random.h"
#include "core/parallel.h"

namespace scconv {

namespace {
uint64_t epoch_key(uint64_t seed, int64_t epoch) {
  return math::mix64(seed ^ math::mix64(0x5eed0000ULL + static_cast<uint64_t>(epoch)));
}
}  // namespace

void prepare_image(const uint8_t* src, int64_t C, int64_t H, int64_t W, float* dst,
                   const AugmentOptions& o, bool augment, uint64_t seed, int64_t epoch, int64_t index) {
  const uint64_t key = epoch_key(seed, epoch);
  auto u = [&](uint64_t k) { return math::uniform01(key, static_cast<uint64_t>(index) * 8 + k); };
  int64_t oy = 0, ox = 0, cy = -1, cx = -1;
  bool flip = false;
  const int64_t p = augment ? o.crop_padding : 0;
  if (augment) {
    if (p > 0) {
      oy = static_cast<int64_t>(u(0) * double(2 * p + 1)) - p;  // offset in [-p, p]
      ox = static_cast<int64_t>(u(1) * double(2 * p + 1)) - p;
    }
    flip = o.flip && u(2) < 0.5;
    if (o.cutout > 0) {
      cy = static_cast<int64_t>(u(3) * double(H));
      cx = static_cast<int64_t>(u(4) * double(W));
    }
  }
  // Output pixel (y, x) reads source (y + oy, x + ox), mirrored when flipped (sx = W-1-(x+ox));
  // outside the image it is the padding. The columns that read inside: [x0, x1).
  const int64_t x0 = std::max<int64_t>(0, -ox), x1 = std::min<int64_t>(W, W - ox);
  for (int64_t c = 0; c < C; ++c) {
    // every value of channel c, by pixel: (p / 255 - mean) / std (core/math/pixels.h)
    float lut[256];
    const float m = static_cast<float>(o.mean[c]), s = static_cast<float>(o.std[c]);
    for (int v = 0; v < 256; ++v) lut[v] = math::normalise_pixel(static_cast<uint8_t>(v), m, s);
    const float black = lut[0];  // a padded pixel: the zero padding happens before normalising
    for (int64_t y = 0; y < H; ++y) {
      float* out = dst + (c * H + y) * W;
      const int64_t sy = y + oy;
      if (sy < 0 || sy >= H || x0 >= x1) {
        std::fill(out, out + W, black);
        continue;
      }
      const uint8_t* row = src + (c * H + sy) * W;
      std::fill(out, out + x0, black);
      if (flip)
        for (int64_t x = x0; x < x1; ++x) out[x] = lut[row[W - 1 - (x + ox)]];
      else
        for (int64_t x = x0; x < x1; ++x) out[x] = lut[row[x + ox]];
      std::fill(out + x1, out + W, black);
    }
    if (cy >= 0)  // cutout: the pixels within (cutout + 1) / 2 of the centre, after normalising
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          if (std::abs(y - cy) * 2 < o.cutout + 1 && std::abs(x - cx) * 2 < o.cutout + 1) dst[(c * H + y) * W + x] = 0.f;
  }
}

Tensor mirrored(const Tensor& x) {
  SCCONV_CHECK(x.dim() == 4 && x.dtype() == DType::F32 && x.device() == Device::CPU,
               "mirrored: expected float images (N, C, H, W) on the CPU, got " << x.str());
  const Tensor src = x.contiguous();
  const int64_t rows = src.size(0) * src.size(1) * src.size(2), W = src.size(3);
  Tensor out = Tensor::empty(src.shape(), DType::F32);
  const float* s = src.data<float>();
  float* d = out.data<float>();
  parallel_for(rows, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t w = 0; w < W; ++w) d[r * W + w] = s[r * W + (W - 1 - w)];
  });
  return out;
}

std::vector<int64_t> epoch_order(int64_t n, bool shuffle, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (!shuffle) return order;
  const uint64_t key = epoch_key(seed, epoch) ^ 0x6f72646572ULL;  // "order"
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates
    int64_t j = static_cast<int64_t>(math::uniform01(key, static_cast<uint64_t>(i)) * double(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

Loader::Loader(const Dataset& data, int64_t batch, bool train, const AugmentOptions& o, uint64_t seed)
    : data_(data), batch_(batch), train_(train), o_(o), seed_(seed),
      background_(available_cores() > get_num_threads()) {
  SCCONV_CHECK(batch > 0, "batch_size must be positive, got " << batch);
  SCCONV_CHECK(data.size() > 0, "the dataset is empty");
  SCCONV_CHECK(static_cast<int64_t>(o.mean.size()) == data.images.size(1) &&
                   static_cast<int64_t>(o.std.size()) == data.images.size(1),
               "data.mean and data.std need one value per image channel (" << data.images.size(1) << ")");
  for (double s : o.std) SCCONV_CHECK(s > 0, "data.std values must be positive");
}

Loader::~Loader() { stop(); }

void Loader::make_batch(int64_t epoch, int64_t b, const std::vector<int64_t>& order, Tensor& x, Tensor& y) const {
  const int64_t n = data_.size(), start = b * batch_, count = std::min(batch_, n - start);
  const int64_t C = data_.images.size(1), H = data_.images.size(2), W = data_.images.size(3);
  x = pin_ ? Tensor::empty_pinned({count, C, H, W}, DType::F32) : Tensor::empty({count, C, H, W});
  y = pin_ ? Tensor::empty_pinned({count}, DType::I64) : Tensor::empty({count}, DType::I64);
  auto images = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t idx = order[start + i];
      prepare_image(data_.images.data<uint8_t>() + idx * C * H * W, C, H, W, x.data<float>() + i * C * H * W, o_,
                    train_, seed_, epoch, idx);
      y.data<int64_t>()[i] = data_.labels.data<int64_t>()[idx];
    }
  };
  if (background_)
    images(0, count);  // (on the loader's own thread)
  else
    parallel_for(count, 16, images);
}

void Loader::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  ready_.clear();
  stopping_ = false;
}

void Loader::start_epoch(int64_t epoch, int64_t first) {
  stop();
  if (!background_) {
    epoch_ = epoch;
    next_batch_ = first;
    order_ = epoch_order(data_.size(), train_, seed_, epoch);
    return;
  }
  done_ = false;
  error_.clear();
  worker_ = std::thread([this, epoch, first] {
    try {
      std::vector<int64_t> order = epoch_order(data_.size(), train_, seed_, epoch);
      for (int64_t b = first; b < batches_per_epoch(); ++b) {
        Tensor x, y;
        make_batch(epoch, b, order, x, y);
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return ready_.size() < kDepth || stopping_; });
        if (stopping_) return;
        ready_.emplace_back(std::move(x), std::move(y));
        cv_.notify_all();
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> g(mu_);
      error_ = e.what();
    }
    std::lock_guard<std::mutex> g(mu_);
    done_ = true;
    cv_.notify_all();
  });
}

bool Loader::next(Tensor& x, Tensor& y, double* wait_seconds) {
  auto t0 = std::chrono::steady_clock::now();
  if (!background_) {
    if (next_batch_ >= batches_per_epoch() || order_.empty()) return false;
    make_batch(epoch_, next_batch_++, order_, x, y);
    if (wait_seconds) *wait_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return true;
  }
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return !ready_.empty() || done_; });
  if (wait_seconds) *wait_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  SCCONV_CHECK(error_.empty(), "data loader: " << error_);
  if (ready_.empty()) return false;
  x = std::move(ready_.front().first);
  y = std::move(ready_.front().second);
  ready_.pop_front();
  cv_.notify_all();
  return true;
}

}  // namespace scconv
