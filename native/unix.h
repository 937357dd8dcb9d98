#pragma once
#include <napi.h>

namespace luo {
// Exports `unix`: SOCK_SEQPACKET sockets that carry fds (SCM_RIGHTS), peer
// credentials, a Poller for their readiness, and sendDatagram (sd_notify's
// SOCK_DGRAM message with SCM_CREDENTIALS and fds).
void InitUnix(Napi::Env env, Napi::Object exports);
}  // namespace luo
