#pragma once
#include <napi.h>

namespace luo {
// Exports `unix`: SOCK_SEQPACKET sockets that carry fds (SCM_RIGHTS), peer
// credentials, and a Poller for their readiness.
void InitUnix(Napi::Env env, Napi::Object exports);
}  // namespace luo
