// One path from a JS call to a system call and back, for every operation.
//
// An operation is a Call: its arguments are parsed and checked on the JS
// thread (a bad argument throws before any syscall), Execute() makes the
// syscall and may run on a libuv worker thread (so it touches no JS values),
// and Result() turns what the kernel returned into JS values. The same Call
// object serves the synchronous export and the Promise export.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

namespace luo {

class Call {
 public:
  Call(const char* syscall, std::string operation)
      : syscall_(syscall), operation_(std::move(operation)) {}
  virtual ~Call() = default;

  // Returns 0 or the errno the kernel reported, untouched.
  virtual int Execute() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  // Execute() succeeded but its result will never reach JS (the
  // environment is being torn down): release what the kernel handed out.
  virtual void Abandon() {}

  const char* syscall() const { return syscall_; }
  const std::string& operation() const { return operation_; }

 protected:
  // For a Call that makes several syscalls: the one that failed is named.
  void set_syscall(const char* syscall) { syscall_ = syscall; }

 private:
  const char* syscall_;
  std::string operation_;
};

// The shape of Node's own system errors (code, negative errno, syscall) plus
// the uAPI operation; lib/errors.ts adds what the errno means for that call.
// The errno's symbolic name from libuv (Node's own table), not glibc's
// strerrorname_np: that needs glibc 2.32, and prebuilds target 2.28.
inline std::string ErrnoName(int err) {
  // libuv says ENOTSUP for 95; the LUO uAPI documents EOPNOTSUPP.
  if (err == EOPNOTSUPP) return "EOPNOTSUPP";
  char name[64];
  uv_err_name_r(-err, name, sizeof name);
  // libuv lacks some (ENOEXEC, EKEYREJECTED): lib/errors.ts names those from os.constants.
  return name[0] == 'E' ? std::string(name) : std::string();
}

inline Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& operation = "") {
  std::string name = ErrnoName(err);
  Napi::Error error = Napi::Error::New(env, (name.empty() ? "errno " + std::to_string(err) : name) + ": " + strerror(err) + ", " + syscall);
  error.Set("errno", Napi::Number::New(env, -err));
  if (!name.empty()) error.Set("code", Napi::String::New(env, name));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.Set("description", Napi::String::New(env, strerror(err)));
  if (!operation.empty()) error.Set("operation", Napi::String::New(env, operation));
  return error;
}

inline Napi::Error SystemError(Napi::Env env, int err, const Call& call) {
  return SystemError(env, err, call.syscall(), call.operation());
}

inline int Errno(long ret) { return ret < 0 ? errno : 0; }

// Retries a syscall interrupted by a signal; returns its result.
template <typename F>
long RetryEintr(F&& syscall) {
  long ret;
  do ret = syscall();
  while (ret < 0 && errno == EINTR);
  return ret;
}

class CallWorker : public Napi::AsyncWorker {
 public:
  CallWorker(Napi::Env env, std::unique_ptr<Call> call)
      : Napi::AsyncWorker(env, "liveupdate"),
        call_(std::move(call)),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  ~CallWorker() override {
    if (!delivered_ && executed_ && err_ == 0) call_->Abandon();
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    err_ = call_->Execute();
    executed_ = true;
  }
  void OnOK() override {
    delivered_ = true;
    Napi::Env env = Env();
    if (err_ != 0) {
      deferred_.Reject(SystemError(env, err_, *call_).Value());
      return;
    }
    try {
      deferred_.Resolve(call_->Result(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  std::unique_ptr<Call> call_;
  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  bool executed_ = false;
  bool delivered_ = false;
};

using CallFactory = std::unique_ptr<Call> (*)(const Napi::CallbackInfo&);

template <CallFactory Make>
Napi::Value RunSync(const Napi::CallbackInfo& info) {
  std::unique_ptr<Call> call = Make(info);
  if (int err = call->Execute()) throw SystemError(info.Env(), err, *call);
  return call->Result(info.Env());
}

template <CallFactory Make>
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  auto* worker = new CallWorker(info.Env(), Make(info));  // owned by libuv
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// Exports `name` (Promise) and `nameSync` for one Call factory.
template <CallFactory Make>
void ExportCall(Napi::Env env, Napi::Object exports, const std::string& name) {
  exports.Set(name, Napi::Function::New<RunAsync<Make>>(env, name));
  exports.Set(name + "Sync", Napi::Function::New<RunSync<Make>>(env, name + "Sync"));
}

// Argument readers: they throw a TypeError (never abort) on a wrong type.
// lib/ validates first and gives the user-facing messages; these are the
// last line that keeps a bad value from ever reaching a syscall.
// A double that is an int32 exactly; checked before the cast, which is
// undefined behaviour for NaN, infinities and out-of-range values.
inline bool IsInt32(double v) {
  return std::isfinite(v) && v >= INT32_MIN && v <= INT32_MAX && std::trunc(v) == v;
}

// napi_get_value_double itself says napi_number_expected for a non-number:
// asking napi_typeof first would be a second N-API call per argument, on
// every ioctl (issue 8 counts each).
inline int32_t Int32Value(Napi::Env env, Napi::Value value, const char* what) {
  double v;
  if (napi_get_value_double(env, value, &v) != napi_ok) throw Napi::TypeError::New(env, std::string(what) + " must be a number");
  if (!IsInt32(v)) throw Napi::RangeError::New(env, std::string(what) + " must be a 32-bit integer");
  return static_cast<int32_t>(v);
}

inline int32_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return Int32Value(info.Env(), info[i], what);
}

inline int32_t FdArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  int32_t fd = IntArg(info, i, what);
  if (fd < 0)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a non-negative fd");
  return fd;
}

inline std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must not contain NUL");
  return s;
}

}  // namespace luo
