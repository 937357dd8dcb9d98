// Module entry. The addon holds no state of its own: every export is a
// plain function of its arguments, so it is safe in worker threads too.
#include <napi.h>

#include "ioctl.h"
#include "mmap.h"
#include "syscalls.h"
#include "unix.h"

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  luo::InitIoctl(env, exports);
  luo::InitSyscalls(env, exports);
  luo::InitMmap(env, exports);
  luo::InitUnix(env, exports);
  return exports;
}

NODE_API_MODULE(liveupdate, Init)
