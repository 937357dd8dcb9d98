// Every LUO ioctl goes through this file: one table (number, struct size,
// which fields carry what) and one path that builds the zero-filled,
// size-prefixed struct, issues the ioctl and reads the outputs back. It
// mirrors the kernel's own luo_ioctl_ops[] table in kernel/liveupdate/.
#include "ioctl.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>

#include "call.h"
#include "uapi.h"

namespace luo {
namespace {

enum class Dir : uint8_t { kNone, kIn, kOut };

struct Field {
  Dir dir = Dir::kNone;
  uint8_t offset = 0;
};

struct IoctlOp {
  const char* name;  // the uAPI name, reported in errors
  unsigned long request;
  uint32_t size;
  Field fd;
  Field token;  // u64
  Field name_field;  // char[64], NUL-terminated
};

#define LUO_FIELD(T, f, d) Field{Dir::d, static_cast<uint8_t>(offsetof(T, f))}

constexpr IoctlOp kOps[] = {
    {"LIVEUPDATE_IOCTL_CREATE_SESSION", kCreateSession, sizeof(CreateSession),
     LUO_FIELD(CreateSession, fd, kOut), {}, LUO_FIELD(CreateSession, name, kIn)},
    {"LIVEUPDATE_IOCTL_RETRIEVE_SESSION", kRetrieveSession, sizeof(RetrieveSession),
     LUO_FIELD(RetrieveSession, fd, kOut), {}, LUO_FIELD(RetrieveSession, name, kIn)},
    {"LIVEUPDATE_SESSION_PRESERVE_FD", kSessionPreserveFd, sizeof(SessionPreserveFd),
     LUO_FIELD(SessionPreserveFd, fd, kIn), LUO_FIELD(SessionPreserveFd, token, kIn), {}},
    {"LIVEUPDATE_SESSION_RETRIEVE_FD", kSessionRetrieveFd, sizeof(SessionRetrieveFd),
     LUO_FIELD(SessionRetrieveFd, fd, kOut), LUO_FIELD(SessionRetrieveFd, token, kIn), {}},
    {"LIVEUPDATE_SESSION_FINISH", kSessionFinish, sizeof(SessionFinish), {}, {}, {}},
    {"LIVEUPDATE_SESSION_GET_NAME", kSessionGetName, sizeof(SessionGetName),
     {}, {}, LUO_FIELD(SessionGetName, name, kOut)},
};

#undef LUO_FIELD

// Large enough for any struct in the table; the kernel's union ucmd_buffer.
constexpr size_t kMaxStruct = 72;
static_assert(sizeof(CreateSession) <= kMaxStruct && sizeof(SessionGetName) <= kMaxStruct);

const IoctlOp* FindOp(const std::string& name) {
  for (const IoctlOp& op : kOps)
    if (name == op.name) return &op;
  return nullptr;
}

class IoctlCall : public Call {
 public:
  IoctlCall(const IoctlOp& op, int target) : Call("ioctl", op.name), op_(op), target_(target) {
    std::memcpy(buf_, &op.size, sizeof(op.size));
  }

  void SetFd(int32_t fd) { std::memcpy(buf_ + op_.fd.offset, &fd, sizeof(fd)); }
  void SetToken(uint64_t token) { std::memcpy(buf_ + op_.token.offset, &token, sizeof(token)); }
  void SetName(const std::string& name) {  // length checked by the caller
    std::memcpy(buf_ + op_.name_field.offset, name.data(), name.size());
  }

  int Execute() override {
    return Errno(RetryEintr([&] { return ::ioctl(target_, op_.request, buf_); }));
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    if (op_.fd.dir == Dir::kOut) out.Set("fd", OutFd());
    if (op_.name_field.dir == Dir::kOut) {
      const char* name = reinterpret_cast<const char*>(buf_ + op_.name_field.offset);
      out.Set("name", Napi::String::New(env, name, strnlen(name, kSessionNameLength)));
    }
    return out;
  }

  void Abandon() override {
    if (op_.fd.dir == Dir::kOut) ::close(OutFd());
  }

 private:
  int32_t OutFd() const {
    int32_t fd;
    std::memcpy(&fd, buf_ + op_.fd.offset, sizeof(fd));
    return fd;
  }

  const IoctlOp& op_;
  int target_;
  alignas(8) uint8_t buf_[kMaxStruct] = {};
};

// ioctl(fd, operation, { fd?, token?, name? }) -> { fd?, name? }
std::unique_ptr<Call> MakeIoctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t target = FdArg(info, 0, "fd");
  const IoctlOp* op = FindOp(StringArg(info, 1, "operation"));
  if (!op) throw Napi::TypeError::New(env, "unknown LUO ioctl operation");
  if (!info[2].IsObject()) throw Napi::TypeError::New(env, "ioctl arguments must be an object");
  Napi::Object args = info[2].As<Napi::Object>();

  auto call = std::make_unique<IoctlCall>(*op, target);
  if (op->fd.dir == Dir::kIn) {
    // Any int32 reaches the kernel (which answers EBADF for a closed or
    // negative fd); lib/ decides which fds a user may pass.
    call->SetFd(Int32Value(env, args.Get("fd"), "fd"));
  }
  if (op->token.dir == Dir::kIn) {
    Napi::Value v = args.Get("token");
    if (!v.IsBigInt()) throw Napi::TypeError::New(env, "token must be a bigint");
    bool lossless = false;
    uint64_t token = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, "token must fit in 64 unsigned bits");
    call->SetToken(token);
  }
  if (op->name_field.dir == Dir::kIn) {
    Napi::Value v = args.Get("name");
    if (!v.IsString()) throw Napi::TypeError::New(env, "name must be a string");
    std::string name = v.As<Napi::String>().Utf8Value();
    if (name.empty() || name.size() >= kSessionNameLength || name.find('\0') != std::string::npos)
      throw Napi::RangeError::New(env, "name must be 1..63 bytes without NUL");
    call->SetName(name);
  }
  return call;
}

Napi::Object Layout(Napi::Env env) {
  Napi::Object layout = Napi::Object::New(env);
  for (const IoctlOp& op : kOps) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("request", Napi::Number::New(env, static_cast<double>(op.request)));
    entry.Set("size", op.size);
    auto field = [&](const char* key, Field f) {
      if (f.dir == Dir::kNone) return;
      Napi::Object o = Napi::Object::New(env);
      o.Set("offset", f.offset);
      o.Set("direction", f.dir == Dir::kIn ? "in" : "out");
      entry.Set(key, o);
    };
    field("fd", op.fd);
    field("token", op.token);
    field("name", op.name_field);
    layout.Set(op.name, entry);
  }
  return layout;
}

}  // namespace

void InitIoctl(Napi::Env env, Napi::Object exports) {
  ExportCall<MakeIoctl>(env, exports, "ioctl");
  exports.Set("ioctlLayout", Layout(env));
}

}  // namespace luo
