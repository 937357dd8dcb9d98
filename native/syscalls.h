#pragma once
#include <napi.h>

namespace luo {
// Exports open, close, memfdCreate, addSeals, getSeals, getFdFlags,
// setFdFlags, pipe, kexecFileLoad, rebootKexec (each with a Sync twin) and
// their constants.
void InitSyscalls(Napi::Env env, Napi::Object exports);
}  // namespace luo
