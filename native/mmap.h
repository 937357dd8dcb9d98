#pragma once
#include <napi.h>

namespace luo {
// Exports mmapSync and munmapSync: a shared mapping of a file as an
// ArrayBuffer that is the mapping itself (Memfd.mapSync in lib/).
void InitMmap(Napi::Env env, Napi::Object exports);
}  // namespace luo
