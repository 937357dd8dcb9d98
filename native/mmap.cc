// mmap(2) of a file into an ArrayBuffer that *is* the mapping (no copy), and
// its munmap(2). lib/memfd-mapping.ts owns the policy (the shrink seal that
// keeps a mapped file from shrinking under us and raising SIGBUS, bounds,
// page alignment); this file only keeps the memory safe:
//
// - munmap happens exactly once, whichever comes first or both: unmap()
//   from JS, collection of the ArrayBuffer, or teardown of the environment
//   (a worker thread exiting). The mapping's state is shared by its two
//   owners, the ArrayBuffer's finalizer hint and the handle lib/ unmaps
//   with, and the last one to let go unmaps it if unmap() did not.
// - No JS view of the memory outlives it: munmapSync detaches the buffer
//   before the munmap. Node runs an external ArrayBuffer's finalizer on
//   the next event-loop turn after a detach (CallbackInfo::OnBackingStoreFree
//   posts it), so the hint is still alive while munmapSync runs, and is then
//   released with nothing left to unmap.
//
// Only a Sync form: mmap of a file touches no page (it is microseconds),
// and the buffer must be made on the JS thread anyway.
#include "mmap.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <memory>
#include <string>

#include "call.h"

namespace luo {
namespace {

class Mapping {
 public:
  Mapping(void* addr, size_t length) : addr_(addr), length_(length) {}
  // The last owner gone (buffer collected or environment torn down) and
  // never unmapped: nothing can reach the memory any more.
  ~Mapping() {
    if (addr_ != nullptr) ::munmap(addr_, length_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  // 0, or the errno of a failed munmap (the mapping then stays, and the
  // destructor tries again).
  int Unmap() {
    if (addr_ == nullptr) return 0;
    if (::munmap(addr_, length_) != 0) return errno;
    addr_ = nullptr;
    return 0;
  }
  void* addr() const { return addr_; }

 private:
  void* addr_;
  size_t length_;
};

using MappingRef = std::shared_ptr<Mapping>;

// Marks the handles made here, so munmapSync never takes another object's
// wrapped pointer for a Mapping. A constant, not state.
constexpr napi_type_tag kHandleTag = {0x6c756f2d6d6d6170ULL, 0x6d617070696e6701ULL};

// A byte count or offset from a JS number: an integer in [0, 2^53]. lib/
// validates first; this keeps anything else from reaching the syscall.
size_t SizeArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v < 0 || v > 9007199254740992.0 || std::trunc(v) != v)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a non-negative safe integer");
  return static_cast<size_t>(v);
}

class MmapCall : public Call {
 public:
  MmapCall(int fd, size_t offset, size_t length, bool writable)
      : Call("mmap", ""), fd_(fd), offset_(offset), length_(length), writable_(writable) {}

  int Execute() override {
    addr_ = ::mmap(nullptr, length_, writable_ ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd_,
                   static_cast<off_t>(offset_));
    return addr_ == MAP_FAILED ? errno : 0;
  }

  // { buffer, handle }. From the first line the Mapping owns the memory, so
  // a throw on the way (out of memory) still unmaps it.
  Napi::Value Result(Napi::Env env) override {
    MappingRef mapping = std::make_shared<Mapping>(addr_, length_);
    addr_ = MAP_FAILED;

    // The C call, not node-addon-api's template: when Node refuses the
    // buffer (longer than buffer.constants.MAX_LENGTH, which lib/ checks
    // first) it may call the finalizer itself, and node-addon-api then frees
    // its own finalizer record a second time (seen: a double free). Here the
    // hint is left to Node on failure: at worst one mapping leaks, never a
    // double free; the mapping stays alive only if Node drops the hint.
    auto* buffer_ref = new MappingRef(mapping);
    napi_value buffer;
    napi_status status = napi_create_external_arraybuffer(
        env, mapping->addr(), length_, [](napi_env, void*, void* ref) { delete static_cast<MappingRef*>(ref); },
        buffer_ref, &buffer);
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());

    Napi::Object handle = Napi::Object::New(env);
    auto handle_ref = std::make_unique<MappingRef>(mapping);
    status = napi_wrap(
        env, handle, handle_ref.get(), [](napi_env, void* data, void*) { delete static_cast<MappingRef*>(data); },
        nullptr, nullptr);
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
    handle_ref.release();
    handle.TypeTag(&kHandleTag);

    Napi::Object out = Napi::Object::New(env);
    out.Set("buffer", buffer);
    out.Set("handle", handle);
    return out;
  }

  void Abandon() override {
    if (addr_ != MAP_FAILED) ::munmap(addr_, length_);
  }

 private:
  int fd_;
  size_t offset_, length_;
  bool writable_;
  void* addr_ = MAP_FAILED;
};

// mmapSync(fd, offset, length, writable) -> { buffer, handle }: MAP_SHARED,
// PROT_READ (| PROT_WRITE when writable).
std::unique_ptr<Call> MakeMmap(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  size_t offset = SizeArg(info, 1, "offset");
  size_t length = SizeArg(info, 2, "length");
  if (length == 0) throw Napi::RangeError::New(info.Env(), "length must be > 0");
  if (!info[3].IsBoolean()) throw Napi::TypeError::New(info.Env(), "writable must be a boolean");
  return std::make_unique<MmapCall>(fd, offset, length, info[3].As<Napi::Boolean>().Value());
}

// munmapSync(handle, buffer): detaches `buffer` (byteLength 0 from now on),
// then unmaps. Idempotent. A buffer someone else detached first (transferred
// to a worker, ArrayBuffer.prototype.transfer) may still be in use where it
// went: its mapping is left to the finalizer, which runs once no
// ArrayBuffer holds the memory.
Napi::Value MunmapSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || !info[0].As<Napi::Object>().CheckTypeTag(&kHandleTag))
    throw Napi::TypeError::New(env, "handle must be a mapping handle from mmapSync");
  if (!info[1].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
  void* data = nullptr;
  napi_status status = napi_unwrap(env, info[0], &data);
  NAPI_THROW_IF_FAILED(env, status, Napi::Value());
  Mapping& mapping = **static_cast<MappingRef*>(data);

  Napi::ArrayBuffer buffer = info[1].As<Napi::ArrayBuffer>();
  if (buffer.IsDetached()) return env.Undefined();
  if (buffer.Data() != mapping.addr()) throw Napi::TypeError::New(env, "buffer is not this mapping's");
  buffer.Detach();
  if (int err = mapping.Unmap()) throw SystemError(env, err, "munmap");
  return env.Undefined();
}

}  // namespace

void InitMmap(Napi::Env env, Napi::Object exports) {
  exports.Set("mmapSync", Napi::Function::New<RunSync<MakeMmap>>(env, "mmapSync"));
  exports.Set("munmapSync", Napi::Function::New<MunmapSync>(env, "munmapSync"));
  // sysconf, not a header constant: arm64 kernels run with 4, 16 or 64 KiB pages.
  exports.Set("pageSize", Napi::Number::New(env, static_cast<double>(::sysconf(_SC_PAGESIZE))));
}

}  // namespace luo
