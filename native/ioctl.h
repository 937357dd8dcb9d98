#pragma once
#include <napi.h>

namespace luo {
// Exports ioctl/ioctlSync (every LUO ioctl) and ioctlLayout (struct sizes and offsets).
void InitIoctl(Napi::Env env, Napi::Object exports);
}  // namespace luo
