// core/device.h: the memory side of a device: where a Storage's bytes come from, how bytes move
// between the host and the device, and pinned host memory for asynchronous uploads.
//
// The CPU needs none of this (core/storage.cpp allocates host memory itself). A GPU backend
// (core/cuda/) implements DeviceRuntime; device_runtime() in core/dispatch.cpp, the single
// dispatch point, hands it out, or throws an Error saying whether this build lacks CUDA or this
// machine lacks a GPU. One process computes on one GPU: `cuda:N` picks which (select_device).
#pragma once
#include <cstddef>
#include <string>

#include "core/dtype.h"

namespace scconv {

class DeviceRuntime {
 public:
  virtual ~DeviceRuntime() = default;
  // Device memory of at least `bytes` (from a cache of freed blocks; never managed memory). Out
  // of memory is an Error naming the bytes asked for, the bytes cached and the device's free memory.
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* p, size_t bytes) = 0;
  // Page-locked host memory, so that an upload from it runs asynchronously. A block is reused
  // only once the uploads that read it have completed.
  virtual void* allocate_pinned(size_t bytes) = 0;
  virtual void deallocate_pinned(void* p, size_t bytes) = 0;
  // Copies `bytes` between memories of the two devices (either may be the CPU). Host-to-device
  // copies from pinned memory are queued on the device's stream; everything else returns only
  // when the bytes have arrived (a device-to-host copy waits for the work queued before it).
  virtual void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes,
                          bool src_pinned) = 0;
  virtual void synchronize() = 0;  // waits for all queued work
};

// A device named on the command line or in a config: "cpu", "cuda" (GPU 0) or "cuda:N".
struct DeviceSpec {
  Device type = Device::CPU;
  int index = 0;
};
DeviceSpec parse_device(const std::string& name);  // Error naming the accepted forms
std::string device_spec_name(const DeviceSpec& d);

// True when tensors can live on `d` here; otherwise false with the reason in *why ("this build
// has SCCONV_CUDA=OFF ..." or "no CUDA GPU is visible: ...").
bool device_available(Device d, std::string* why = nullptr);
// Checks availability (Error with the reason) and, for CUDA, makes GPU `index` the current one.
void select_device(const DeviceSpec& d);
DeviceRuntime& device_runtime(Device d);

}  // namespace scconv
