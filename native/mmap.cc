// mmap(2) of a file into an ArrayBuffer that *is* the mapping (no copy), and
// its munmap(2). lib/memfd-mapping.ts owns the policy (the shrink seal that
// keeps a mapped file from shrinking under us and raising SIGBUS, bounds,
// page alignment); this file only keeps the memory safe:
//
// - munmap happens exactly once, whichever comes first or both: unmap()
//   from JS, collection of the ArrayBuffer, or teardown of the environment
//   (a worker thread exiting). The mapping's state has two owners, the
//   ArrayBuffer's finalizer hint and the handle lib/ unmaps with, and the
//   last one to let go unmaps it if unmap() did not.
// - No JS view of the memory outlives it: munmapSync detaches the buffer
//   before the munmap. Node runs an external ArrayBuffer's finalizer on a
//   later event-loop turn after a detach (CallbackInfo::OnBackingStoreFree
//   posts it, where Bun, for one, runs it inside the detach); either way it
//   only lets go of its owner, and finds nothing left to unmap.
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

// Owned by a count, not std::shared_ptr: libstdc++'s shared_ptr imports
// __libc_single_threaded (glibc 2.32), above the 2.28 floor
// (test/host/glibc-floor.test.ts), and needs no atomics here: every owner is
// let go on the JS thread of the environment that made it (N-API runs
// finalizers there).
class Mapping {
 public:
  // Starts with one owner: the caller, who releases it.
  Mapping(void* addr, size_t length) : addr_(addr), length_(length) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  void Retain() { ++owners_; }
  // The last owner gone (buffer collected or environment torn down) and
  // never unmapped: nothing can reach the memory any more.
  void Release() {
    if (--owners_ > 0) return;
    if (addr_ != nullptr) ::munmap(addr_, length_);
    delete this;
  }

  // 0, or the errno of a failed munmap (the mapping then stays, and the
  // last Release() tries again).
  int Unmap() {
    if (addr_ == nullptr) return 0;
    if (::munmap(addr_, length_) != 0) return errno;
    addr_ = nullptr;
    return 0;
  }
  void* addr() const { return addr_; }

 private:
  ~Mapping() = default;
  void* addr_;
  size_t length_;
  int owners_ = 1;
};

// The buffer's finalizer gets the mapping as its hint (its data is the
// memory); the handle's, as its data.
void ReleaseBuffer(napi_env, void*, void* mapping) { static_cast<Mapping*>(mapping)->Release(); }
void ReleaseHandle(napi_env, void* mapping, void*) { static_cast<Mapping*>(mapping)->Release(); }

// The caller's own ownership, let go however Result() ends.
struct Held {
  Mapping* mapping;
  ~Held() { mapping->Release(); }
};

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
    Held held{new Mapping(addr_, length_)};
    addr_ = MAP_FAILED;

    // The C call, not node-addon-api's template: when Node refuses the
    // buffer (longer than buffer.constants.MAX_LENGTH, which lib/ checks
    // first) it calls the finalizer itself, and node-addon-api then frees its
    // own finalizer record a second time (seen: a double free). Here the
    // buffer's ownership is Node's from this call on, whether it fails or not.
    held.mapping->Retain();
    napi_value buffer;
    napi_status status =
        napi_create_external_arraybuffer(env, held.mapping->addr(), length_, ReleaseBuffer, held.mapping, &buffer);
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());

    Napi::Object handle = Napi::Object::New(env);
    held.mapping->Retain();
    status = napi_wrap(env, handle, held.mapping, ReleaseHandle, nullptr, nullptr);
    if (status != napi_ok) held.mapping->Release();  // napi_wrap took nothing
    NAPI_THROW_IF_FAILED(env, status, Napi::Value());
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
  Mapping& mapping = *static_cast<Mapping*>(data);

  Napi::ArrayBuffer buffer = info[1].As<Napi::ArrayBuffer>();
  if (buffer.IsDetached()) return env.Undefined();
  // Once unmapped, addr() is null, and so is the Data() of any empty
  // ArrayBuffer: without this a foreign `new ArrayBuffer(0)` would pass the
  // check below and be detached.
  if (mapping.addr() == nullptr) return env.Undefined();
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
