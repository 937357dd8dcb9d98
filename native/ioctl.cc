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
constexpr uint32_t kOpCount = sizeof(kOps) / sizeof(kOps[0]);
constexpr double kMaxSafeInteger = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

// One ioctl's struct: zero-filled, size-prefixed, 8-aligned for the token.
struct Buffer {
  explicit Buffer(const IoctlOp& op) { std::memcpy(bytes, &op.size, sizeof(op.size)); }
  alignas(8) uint8_t bytes[kMaxStruct] = {};
};

// The operation is its index in kOps (exported as ioctlLayout[name].index):
// a bounds check, where a name would cost a string copy and compare per call.
const IoctlOp& OpArg(const Napi::CallbackInfo& info) {
  int32_t index = IntArg(info, 1, "operation");
  if (index < 0 || static_cast<uint32_t>(index) >= kOpCount)
    throw Napi::RangeError::New(info.Env(), "unknown LUO ioctl operation");
  return kOps[index];
}

// The op's inputs, positional after (fd, operation), in the table's field
// order (fd, token, name), each present only when the op reads it:
//   CREATE_SESSION, RETRIEVE_SESSION: name; PRESERVE_FD: fd, token;
//   RETRIEVE_FD: token; FINISH, GET_NAME: none.
// Read straight from the arguments into the struct: no arguments object
// whose properties would each be a named lookup.
void ReadInputs(const Napi::CallbackInfo& info, const IoctlOp& op, Buffer& buf) {
  Napi::Env env = info.Env();
  size_t next = 2;
  if (op.fd.dir == Dir::kIn) {
    // Any int32 reaches the kernel (which answers EBADF for a closed or
    // negative fd); lib/ decides which fds a user may pass.
    int32_t fd = IntArg(info, next++, "fd");
    std::memcpy(buf.bytes + op.fd.offset, &fd, sizeof(fd));
  }
  if (op.token.dir == Dir::kIn) {
    // A bigint, or a number that is a safe non-negative integer: lib/
    // passes small tokens as numbers, sparing a BigInt per call.
    Napi::Value v = info[next++];
    uint64_t token;
    double d;
    if (napi_get_value_double(env, v, &d) == napi_ok) {
      if (!(d >= 0 && d <= kMaxSafeInteger && std::trunc(d) == d))
        throw Napi::RangeError::New(env, "token must be a safe non-negative integer or a bigint");
      token = static_cast<uint64_t>(d);
    } else if (v.IsBigInt()) {
      bool lossless = false;
      token = v.As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) throw Napi::RangeError::New(env, "token must fit in 64 unsigned bits");
    } else {
      throw Napi::TypeError::New(env, "token must be a bigint or a number");
    }
    std::memcpy(buf.bytes + op.token.offset, &token, sizeof(token));
  }
  if (op.name_field.dir == Dir::kIn) {
    // Written in place into the zeroed field (its NUL included): no
    // std::string per call, and one N-API call for a usual name. A name
    // that does not fit is refused, so the kernel never sees a truncated
    // one. The copy stops short of a character that would not fit, so only
    // a copy within a character's length (4 bytes) of the end can be cut,
    // and only then is the whole name measured.
    char* field = reinterpret_cast<char*>(buf.bytes + op.name_field.offset);
    size_t length = 0;
    if (napi_get_value_string_utf8(env, info[next++], field, kSessionNameLength, &length) != napi_ok)
      throw Napi::TypeError::New(env, "name must be a string");
    if (length + 4 >= kSessionNameLength)
      NAPI_THROW_IF_FAILED_VOID(env, napi_get_value_string_utf8(env, info[next - 1], nullptr, 0, &length));
    if (length == 0 || length >= kSessionNameLength || std::memchr(field, '\0', length))
      throw Napi::RangeError::New(env, "name must be 1..63 bytes without NUL");
  }
}

// The one place a LUO ioctl is issued. Returns 0 or the errno, untouched.
int Issue(const IoctlOp& op, int target, Buffer& buf) {
  return Errno(RetryEintr([&] { return ::ioctl(target, op.request, buf.bytes); }));
}

int32_t OutFd(const IoctlOp& op, const Buffer& buf) {
  int32_t fd;
  std::memcpy(&fd, buf.bytes + op.fd.offset, sizeof(fd));
  return fd;
}

// What the op hands back: the new fd, the session name, or nothing.
Napi::Value Output(Napi::Env env, const IoctlOp& op, const Buffer& buf) {
  if (op.fd.dir == Dir::kOut) return Napi::Number::New(env, OutFd(op, buf));
  if (op.name_field.dir == Dir::kOut) {
    const char* name = reinterpret_cast<const char*>(buf.bytes + op.name_field.offset);
    return Napi::String::New(env, name, strnlen(name, kSessionNameLength));
  }
  return env.Undefined();
}

// The Promise form: the struct travels to the worker in the Call.
class IoctlCall : public Call {
 public:
  IoctlCall(const IoctlOp& op, int target) : Call("ioctl", op.name), op_(op), target_(target), buf_(op) {}
  Buffer& buffer() { return buf_; }
  int Execute() override { return Issue(op_, target_, buf_); }
  Napi::Value Result(Napi::Env env) override { return Output(env, op_, buf_); }
  void Abandon() override {
    if (op_.fd.dir == Dir::kOut) ::close(OutFd(op_, buf_));
  }

 private:
  const IoctlOp& op_;
  int target_;
  Buffer buf_;
};

// ioctl(fd, operation, ...inputs) -> Promise<fd | name | undefined>
std::unique_ptr<Call> MakeIoctl(const Napi::CallbackInfo& info) {
  int32_t target = FdArg(info, 0, "fd");
  const IoctlOp& op = OpArg(info);
  auto call = std::make_unique<IoctlCall>(op, target);
  ReadInputs(info, op, call->buffer());
  return call;
}

// ioctlSync(fd, operation, ...inputs) -> fd | name | undefined. The same
// inputs, Issue() and Output() as the Promise form, with the struct on the
// stack: a sync call allocates nothing but its result.
Napi::Value IoctlSync(const Napi::CallbackInfo& info) {
  int32_t target = FdArg(info, 0, "fd");
  const IoctlOp& op = OpArg(info);
  Buffer buf(op);
  ReadInputs(info, op, buf);
  if (int err = Issue(op, target, buf)) throw SystemError(info.Env(), err, "ioctl", op.name);
  return Output(info.Env(), op, buf);
}

Napi::Object Layout(Napi::Env env) {
  Napi::Object layout = Napi::Object::New(env);
  for (const IoctlOp& op : kOps) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("index", static_cast<uint32_t>(&op - kOps));
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
  exports.Set("ioctl", Napi::Function::New<RunAsync<MakeIoctl>>(env, "ioctl"));
  exports.Set("ioctlSync", Napi::Function::New<IoctlSync>(env, "ioctlSync"));
  exports.Set("ioctlLayout", Layout(env));
}

}  // namespace luo
