// File descriptors over UNIX sockets (SCM_RIGHTS), for handing session fds
// between processes. Sockets are SOCK_SEQPACKET: every message keeps its
// boundaries and its own fds. All calls are non-blocking; readiness comes
// from a Poller (uv_poll) so nothing waits on a thread. sendDatagram (the
// sd_notify datagram) shares the same address and sendmsg() path.
#include "unix.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <uv.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "call.h"

namespace luo {
namespace {

constexpr int kSockFlags = SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK;
// More than any message of ours carries; more arriving sets MSG_CTRUNC.
constexpr size_t kMaxFds = 253;  // SCM_MAX_FD
// The largest maxPayload receive() takes (lib/unix-socket.ts refuses more
// first). A message cannot be larger than the sender's socket buffer anyway
// (net.core.wmem_max), and the buffer is sized to the message, not to this.
constexpr int32_t kMaxPayloadLimit = 16 << 20;

[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall) { throw SystemError(env, err, syscall); }

// A UNIX socket address and its exact length. `bytes` is the sun_path: a
// filesystem path, or an abstract name when it starts with NUL.
struct UnixAddress {
  sockaddr_un addr{};
  socklen_t length = 0;
};

UnixAddress Address(Napi::Env env, const std::string& bytes) {
  UnixAddress a;
  a.addr.sun_family = AF_UNIX;
  bool abstract = !bytes.empty() && bytes[0] == '\0';
  // A path needs room for its NUL; an abstract name may fill the field.
  size_t max = sizeof(a.addr.sun_path) - (abstract ? 0 : 1);
  if (bytes.empty() || bytes.size() > max)
    throw Napi::RangeError::New(env, "socket address must be 1.." + std::to_string(max) + " bytes");
  std::memcpy(a.addr.sun_path, bytes.data(), bytes.size());
  a.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + bytes.size());
  return a;
}

// A socket of `type` connected to `a`; -1 with errno set and `*failed`
// naming the syscall that failed. The fd never leaks on failure.
int ConnectTo(int type, const UnixAddress& a, const char** failed) {
  int fd = ::socket(AF_UNIX, type, 0);
  if (fd < 0) {
    *failed = "socket";
    return -1;
  }
  if (RetryEintr([&] { return ::connect(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.length); }) < 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    *failed = "connect";
    return -1;
  }
  return fd;
}

// The fds of a JS array, checked on the JS thread.
std::vector<int> FdList(Napi::Env env, Napi::Value value) {
  if (!value.IsArray()) throw Napi::TypeError::New(env, "fds must be an array");
  Napi::Array list = value.As<Napi::Array>();
  if (list.Length() > kMaxFds) throw Napi::RangeError::New(env, "too many fds for one message");
  std::vector<int> fds;
  for (uint32_t i = 0; i < list.Length(); i++) {
    int32_t v = Int32Value(env, list.Get(i), "fd");
    if (v < 0) throw Napi::RangeError::New(env, "fds must be non-negative");
    fds.push_back(v);
  }
  return fds;
}

// The one sendmsg() path: a payload with fds (SCM_RIGHTS) and, when asked,
// this process's pid/uid/gid (SCM_CREDENTIALS, what sd_notify sends). No
// allocation, so it is safe on a worker thread. Returns sendmsg's result.
long SendMessage(int fd, const uint8_t* data, size_t length, const std::vector<int>& fds, bool credentials,
                 int flags) {
  alignas(cmsghdr) uint8_t control[CMSG_SPACE(sizeof(int) * kMaxFds) + CMSG_SPACE(sizeof(ucred))] = {};
  iovec iov{const_cast<uint8_t*>(data), length};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  size_t used = 0;
  if (!fds.empty()) {
    auto* cmsg = reinterpret_cast<cmsghdr*>(control);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
    used += CMSG_SPACE(sizeof(int) * fds.size());
  }
  if (credentials) {
    auto* cmsg = reinterpret_cast<cmsghdr*>(control + used);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_CREDENTIALS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(ucred));
    ucred cred{::getpid(), ::getuid(), ::getgid()};
    std::memcpy(CMSG_DATA(cmsg), &cred, sizeof(cred));
    used += CMSG_SPACE(sizeof(ucred));
  }
  if (used > 0) {
    msg.msg_control = control;
    msg.msg_controllen = used;
  }
  return RetryEintr([&] { return ::sendmsg(fd, &msg, flags | MSG_NOSIGNAL); });
}

// socketpair() -> [fd, fd]
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  int fds[2];
  if (::socketpair(AF_UNIX, kSockFlags, 0, fds) < 0) ThrowErrno(info.Env(), errno, "socketpair");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}

// listen(path, backlog) -> fd
Napi::Value Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UnixAddress a = Address(env, StringArg(info, 0, "path"));
  int backlog = IntArg(info, 1, "backlog");
  int fd = ::socket(AF_UNIX, kSockFlags, 0);
  if (fd < 0) ThrowErrno(env, errno, "socket");
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a.addr), a.length) < 0 || ::listen(fd, backlog) < 0) {
    int err = errno;
    ::close(fd);
    ThrowErrno(env, err, err == EADDRINUSE ? "bind" : "listen");
  }
  return Napi::Number::New(env, fd);
}

// connect(path) -> fd. A UNIX connect completes at once or fails (EAGAIN
// when the listener's backlog is full), so it is safe on the JS thread.
Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* failed = "";
  int fd = ConnectTo(kSockFlags, Address(env, StringArg(info, 0, "path")), &failed);
  if (fd < 0) ThrowErrno(env, errno, failed);
  return Napi::Number::New(env, fd);
}

// accept(fd) -> fd, or null when no connection is waiting.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RetryEintr([&] { return ::accept4(FdArg(info, 0, "fd"), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK); });
  if (fd >= 0) return Napi::Number::New(env, fd);
  if (errno == EAGAIN || errno == ECONNABORTED) return env.Null();
  ThrowErrno(env, errno, "accept4");
}

// send(fd, payload, fds) -> bytes sent, or -1 when the socket buffer is
// full. The fds ride on this one call only, so a retry (or the rest of a
// partly sent stream frame) never carries them twice.
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  if (!info[1].IsBuffer()) throw Napi::TypeError::New(env, "payload must be a Buffer");
  Napi::Buffer<uint8_t> payload = info[1].As<Napi::Buffer<uint8_t>>();
  if (payload.Length() == 0) throw Napi::RangeError::New(env, "payload must not be empty");
  std::vector<int> fds = FdList(env, info[2]);
  long sent = SendMessage(fd, payload.Data(), payload.Length(), fds, false, MSG_DONTWAIT);
  if (sent >= 0) return Napi::Number::New(env, static_cast<double>(sent));
  if (errno == EAGAIN) return Napi::Number::New(env, -1);
  ThrowErrno(env, errno, "sendmsg");
}

// sendDatagram(address, payload, fds): one datagram to the SOCK_DGRAM
// socket at `address` (a Buffer: a path, or NUL + an abstract name), with
// SCM_CREDENTIALS and the fds: the sd_notify(3) wire format. A fresh
// blocking socket per message, as sd_notify does, so the Promise form
// waits on a worker thread if the receiver's queue is full.
class SendDatagramCall : public Call {
 public:
  SendDatagramCall(UnixAddress address, std::vector<uint8_t> payload, std::vector<int> fds)
      : Call("sendmsg", ""), address_(address), payload_(std::move(payload)), fds_(std::move(fds)) {}

  int Execute() override {
    const char* failed = "";
    int fd = ConnectTo(SOCK_DGRAM | SOCK_CLOEXEC, address_, &failed);
    if (fd < 0) {
      set_syscall(failed);
      return errno;
    }
    int err = Errno(SendMessage(fd, payload_.data(), payload_.size(), fds_, true, 0));
    ::close(fd);
    return err;
  }

 private:
  UnixAddress address_;
  std::vector<uint8_t> payload_;
  std::vector<int> fds_;
};

std::unique_ptr<Call> MakeSendDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer() || !info[1].IsBuffer())
    throw Napi::TypeError::New(env, "address and payload must be Buffers");
  Napi::Buffer<uint8_t> address = info[0].As<Napi::Buffer<uint8_t>>();
  Napi::Buffer<uint8_t> payload = info[1].As<Napi::Buffer<uint8_t>>();
  if (payload.Length() == 0) throw Napi::RangeError::New(env, "payload must not be empty");
  return std::make_unique<SendDatagramCall>(
      Address(env, std::string(reinterpret_cast<const char*>(address.Data()), address.Length())),
      std::vector<uint8_t>(payload.Data(), payload.Data() + payload.Length()), FdList(env, info[2]));
}

// receive(fd, maxPayload) -> null when nothing is waiting, else
// { payload, fds, eof, truncated }. Fds arrive close-on-exec. When the
// control data was cut (MSG_CTRUNC) the fds that did arrive are closed here
// and `truncated` says so: a partial set is never handed out.
//
// recvmsg() returns 0 both for a zero-length SEQPACKET message and at the
// end of the connection. SO_PASSCRED tells them apart: with it, every
// message (even one queued before it was set) comes with SCM_CREDENTIALS,
// and the end of the connection with nothing. (Not on a stream: there the
// end comes with credentials too, and 0 bytes can only be the end.)
Napi::Value Receive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  int32_t max = IntArg(info, 1, "maxPayload");
  if (max <= 0 || max > kMaxPayloadLimit) throw Napi::RangeError::New(env, "maxPayload must be 1..16 MiB");
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) ThrowErrno(env, errno, "setsockopt");
  // Size a datagram's buffer to the message waiting (MSG_PEEK | MSG_TRUNC
  // gives its full length), so a large maxPayload costs nothing per
  // message. A stream reads into maxPayload as it is.
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) ThrowErrno(env, errno, "getsockopt");
  ssize_t size = max;
  if (type != SOCK_STREAM) {
    ssize_t waiting = RetryEintr([&] { return ::recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT); });
    if (waiting < 0) {
      if (errno == EAGAIN) return env.Null();
      ThrowErrno(env, errno, "recvmsg");
    }
    size = std::min<ssize_t>(std::max<ssize_t>(waiting, 1), max);
  }
  std::vector<uint8_t> buf(static_cast<size_t>(size));
  std::vector<uint8_t> control(CMSG_SPACE(sizeof(int) * kMaxFds) + CMSG_SPACE(sizeof(ucred)));
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n = RetryEintr([&] { return ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT); });
  if (n < 0) {
    if (errno == EAGAIN) return env.Null();
    ThrowErrno(env, errno, "recvmsg");
  }
  bool message = false;  // an SCM_CREDENTIALS came: this was a message, not the end
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) message = true;
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int received;
      std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.push_back(received);
    }
  }
  bool ctrunc = (msg.msg_flags & MSG_CTRUNC) != 0;
  if (ctrunc) {
    for (int f : fds) ::close(f);
    fds.clear();
  }
  try {
    Napi::Object out = Napi::Object::New(env);
    out.Set("payload", Napi::Buffer<uint8_t>::Copy(env, buf.data(), static_cast<size_t>(n)));
    Napi::Array list = Napi::Array::New(env, fds.size());
    for (size_t i = 0; i < fds.size(); i++) list.Set(static_cast<uint32_t>(i), fds[i]);
    out.Set("fds", list);
    // A stream carries no empty messages, and its recvmsg() brings
    // SCM_CREDENTIALS with SO_PASSCRED even at the end: 0 bytes is the end.
    bool end = n == 0 && fds.empty() && !ctrunc && (type == SOCK_STREAM || !message);
    out.Set("eof", Napi::Boolean::New(env, end));
    out.Set("truncated", Napi::Boolean::New(env, ctrunc || (msg.msg_flags & MSG_TRUNC) != 0));
    out.Set("fdsTruncated", Napi::Boolean::New(env, ctrunc));
    return out;
  } catch (...) {
    for (int f : fds) ::close(f);  // never reached JS: nobody else could close them
    throw;
  }
}

// peerCredentials(fd) -> { pid, uid, gid, groups } of the process that
// connected, as of connect(): SO_PEERCRED and SO_PEERGROUPS, so nothing is
// read from /proc where the pid may already be someone else's.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) ThrowErrno(env, errno, "getsockopt");
  std::vector<gid_t> groups(64);
  for (;;) {
    socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
      groups.resize(glen / sizeof(gid_t));
      break;
    }
    if (errno != ERANGE) ThrowErrno(env, errno, "getsockopt");
    groups.resize(glen / sizeof(gid_t) + 1);  // glen says how much is needed
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", cred.pid);
  out.Set("uid", cred.uid);
  out.Set("gid", cred.gid);
  Napi::Array list = Napi::Array::New(env, groups.size());
  for (size_t i = 0; i < groups.size(); i++) list.Set(static_cast<uint32_t>(i), groups[i]);
  out.Set("groups", list);
  return out;
}

// socketType(fd) -> 'seqpacket' | 'stream' for UNIX sockets, else null.
Napi::Value SocketType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  int domain = 0, type = 0;
  socklen_t len = sizeof(int);
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0) {
    if (errno == ENOTSOCK) return env.Null();
    ThrowErrno(env, errno, "getsockopt");
  }
  len = sizeof(int);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) ThrowErrno(env, errno, "getsockopt");
  if (domain != AF_UNIX) return env.Null();
  if (type == SOCK_SEQPACKET) return Napi::String::New(env, "seqpacket");
  if (type == SOCK_STREAM) return Napi::String::New(env, "stream");
  return env.Null();
}

// dup(fd) -> a close-on-exec copy (F_DUPFD_CLOEXEC).
Napi::Value Dup(const Napi::CallbackInfo& info) {
  int copy = ::fcntl(FdArg(info, 0, "fd"), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) ThrowErrno(info.Env(), errno, "fcntl");
  return Napi::Number::New(info.Env(), copy);
}

// Readiness of one fd from the event loop (uv_poll): calls back with
// (readable, writable, hangup) until stopped. The handle is freed by
// uv_close once libuv is done with it.
class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod("start", &Poller::Start), InstanceMethod("stop", &Poller::Stop),
                        InstanceMethod("close", &Poller::Close)});
  }

  explicit Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info) {
    Napi::Env env = info.Env();
    int fd = FdArg(info, 0, "fd");
    if (!info[1].IsFunction()) throw Napi::TypeError::New(env, "callback must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "liveupdate:poll");
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) throw Napi::Error::New(env, "no event loop");
    handle_ = new uv_poll_t;
    int err = uv_poll_init(loop, handle_, fd);
    if (err < 0) {
      delete handle_;
      handle_ = nullptr;
      throw Napi::Error::New(env, std::string("uv_poll_init: ") + uv_strerror(err));
    }
    handle_->data = this;
  }

  ~Poller() override { Release(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (!handle_) throw Napi::Error::New(info.Env(), "poller is closed");
    int events = 0;
    if (info[0].ToBoolean()) events |= UV_READABLE | UV_DISCONNECT;
    if (info[1].ToBoolean()) events |= UV_WRITABLE;
    int err = uv_poll_start(handle_, events, OnEvent);
    if (err < 0) throw Napi::Error::New(info.Env(), std::string("uv_poll_start: ") + uv_strerror(err));
    if (!active_) Ref();  // keeps this object (and so the handle) alive while polling
    active_ = true;
    return info.Env().Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_) uv_poll_stop(handle_);
    Unref_();
    return info.Env().Undefined();
  }

  // Stops polling for good; the fd itself stays open (its owner closes it).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Unref_();
    Release();
    return info.Env().Undefined();
  }

  void Unref_() {
    if (active_) Unref();
    active_ = false;
  }

  void Release() {
    if (!handle_) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }

  static void OnEvent(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<Poller*>(handle->data);
    if (!self) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    // On a poll error libuv stops the handle: report everything so the JS
    // side tries its reads and writes, meets the real error and settles.
    bool failed = status < 0;
    try {
      self->callback_.MakeCallback(env.Global(),
                                   {Napi::Boolean::New(env, failed || (events & UV_READABLE)),
                                    Napi::Boolean::New(env, failed || (events & UV_WRITABLE)),
                                    Napi::Boolean::New(env, failed || (events & UV_DISCONNECT))},
                                   *self->context_);
    } catch (const Napi::Error& e) {
      // A C++ exception must not leave a libuv callback (std::terminate):
      // hand the JS exception to Node as if thrown from a JS callback.
      napi_fatal_exception(env, e.Value());
    }
  }

  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
  uv_poll_t* handle_ = nullptr;
  bool active_ = false;
};

}  // namespace

void InitUnix(Napi::Env env, Napi::Object exports) {
  Napi::Object unix = Napi::Object::New(env);
  unix.Set("socketPair", Napi::Function::New<SocketPair>(env, "socketPair"));
  unix.Set("listen", Napi::Function::New<Listen>(env, "listen"));
  unix.Set("connect", Napi::Function::New<Connect>(env, "connect"));
  unix.Set("accept", Napi::Function::New<Accept>(env, "accept"));
  unix.Set("send", Napi::Function::New<Send>(env, "send"));
  unix.Set("receive", Napi::Function::New<Receive>(env, "receive"));
  unix.Set("peerCredentials", Napi::Function::New<PeerCredentials>(env, "peerCredentials"));
  unix.Set("dup", Napi::Function::New<Dup>(env, "dup"));
  unix.Set("socketType", Napi::Function::New<SocketType>(env, "socketType"));
  ExportCall<MakeSendDatagram>(env, unix, "sendDatagram");
  unix.Set("Poller", Poller::Define(env));
  exports.Set("unix", unix);
}

}  // namespace luo
