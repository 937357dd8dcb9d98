// The non-ioctl system calls a live update needs: opening the device,
// closing fds, memfds and their seals, fd flags, pipes, kexec_file_load and
// the kexec reboot.
// Each is a Call (see call.h), so each has a sync and a Promise export.
#include "syscalls.h"

#include <fcntl.h>
#include <linux/reboot.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "call.h"

// bookworm's headers predate these; values from include/uapi/linux/kexec.h.
#ifndef KEXEC_FILE_UNLOAD
#define KEXEC_FILE_UNLOAD 0x00000001
#endif
#ifndef KEXEC_FILE_NO_INITRAMFS
#define KEXEC_FILE_NO_INITRAMFS 0x00000004
#endif

namespace luo {
namespace {

// A Call whose result is the syscall's return value (a new fd, the seals) or nothing.
class SimpleCall : public Call {
 public:
  using Call::Call;
  Napi::Value Result(Napi::Env env) override {
    return returns_value_ ? Napi::Number::New(env, ret_) : env.Undefined();
  }
  void Abandon() override {
    if (returns_fd_) ::close(static_cast<int>(ret_));
  }

 protected:
  int Finish(long ret, bool returns_value) {
    ret_ = ret;
    returns_value_ = returns_value;
    return Errno(ret);
  }
  long ret_ = -1;
  bool returns_value_ = false;
  bool returns_fd_ = false;  // ret_ is a new fd this call owns until delivered
};

class OpenCall : public SimpleCall {
 public:
  OpenCall(std::string path, int flags) : SimpleCall("open", ""), path_(std::move(path)), flags_(flags) {}
  int Execute() override {
    returns_fd_ = true;
    return Finish(RetryEintr([&] { return ::open(path_.c_str(), flags_ | O_CLOEXEC); }), true);
  }

 private:
  std::string path_;
  int flags_;
};

// open(path, flags) -> fd; O_CLOEXEC is always added.
std::unique_ptr<Call> MakeOpen(const Napi::CallbackInfo& info) {
  return std::make_unique<OpenCall>(StringArg(info, 0, "path"), IntArg(info, 1, "flags"));
}

// No EINTR retry: on Linux the fd is released even when close() is
// interrupted, and a retry could close a number someone else just got.
int CloseFd(int fd) { return Errno(::close(fd)); }

class CloseCall : public SimpleCall {
 public:
  explicit CloseCall(int fd) : SimpleCall("close", ""), fd_(fd) {}
  int Execute() override { return CloseFd(fd_); }

 private:
  int fd_;
};

std::unique_ptr<Call> MakeClose(const Napi::CallbackInfo& info) {
  return std::make_unique<CloseCall>(FdArg(info, 0, "fd"));
}

// closeSync(fd): half of every create+close, so it skips the Call (a heap
// allocation and a virtual call) that only the Promise form needs.
Napi::Value CloseSync(const Napi::CallbackInfo& info) {
  if (int err = CloseFd(FdArg(info, 0, "fd"))) throw SystemError(info.Env(), err, "close");
  return info.Env().Undefined();
}

class MemfdCreateCall : public SimpleCall {
 public:
  MemfdCreateCall(std::string name, unsigned flags)
      : SimpleCall("memfd_create", ""), name_(std::move(name)), flags_(flags) {}
  int Execute() override {
    returns_fd_ = true;
    return Finish(::memfd_create(name_.c_str(), flags_ | MFD_CLOEXEC), true);
  }

 private:
  std::string name_;
  unsigned flags_;
};

// memfdCreate(name, flags) -> fd; MFD_CLOEXEC is always added.
std::unique_ptr<Call> MakeMemfdCreate(const Napi::CallbackInfo& info) {
  return std::make_unique<MemfdCreateCall>(StringArg(info, 0, "name"),
                                           static_cast<unsigned>(IntArg(info, 1, "flags")));
}

class FcntlCall : public SimpleCall {
 public:
  FcntlCall(int fd, int cmd, int arg, bool returns_value)
      : SimpleCall("fcntl", ""), fd_(fd), cmd_(cmd), arg_(arg), returns_value_(returns_value) {}
  int Execute() override {
    return Finish(RetryEintr([&] { return ::fcntl(fd_, cmd_, arg_); }), returns_value_);
  }

 private:
  int fd_, cmd_, arg_;
  bool returns_value_;
};

// addSeals(fd, seals); getSeals(fd) -> seals
std::unique_ptr<Call> MakeAddSeals(const Napi::CallbackInfo& info) {
  return std::make_unique<FcntlCall>(FdArg(info, 0, "fd"), F_ADD_SEALS, IntArg(info, 1, "seals"), false);
}

std::unique_ptr<Call> MakeGetSeals(const Napi::CallbackInfo& info) {
  return std::make_unique<FcntlCall>(FdArg(info, 0, "fd"), F_GET_SEALS, 0, true);
}

// getFdFlags(fd) -> FD_* flags; setFdFlags(fd, flags). Fds inherited from
// systemd arrive without FD_CLOEXEC; F_GETFD is also the cheap "is it open".
std::unique_ptr<Call> MakeGetFdFlags(const Napi::CallbackInfo& info) {
  return std::make_unique<FcntlCall>(FdArg(info, 0, "fd"), F_GETFD, 0, true);
}

std::unique_ptr<Call> MakeSetFdFlags(const Napi::CallbackInfo& info) {
  return std::make_unique<FcntlCall>(FdArg(info, 0, "fd"), F_SETFD, IntArg(info, 1, "flags"), false);
}

class PipeCall : public Call {
 public:
  PipeCall() : Call("pipe2", "") {}
  int Execute() override { return Errno(::pipe2(fds_, O_CLOEXEC)); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, fds_[0]);
    out.Set(1u, fds_[1]);
    return out;
  }
  void Abandon() override {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }

 private:
  int fds_[2] = {-1, -1};
};

// pipe() -> [readFd, writeFd], both close-on-exec (sd_notify's BARRIER=1 needs one).
std::unique_ptr<Call> MakePipe(const Napi::CallbackInfo&) { return std::make_unique<PipeCall>(); }

class KexecFileLoadCall : public SimpleCall {
 public:
  KexecFileLoadCall(int kernel_fd, int initrd_fd, std::string cmdline, unsigned long flags)
      : SimpleCall("kexec_file_load", ""),
        kernel_fd_(kernel_fd), initrd_fd_(initrd_fd), cmdline_(std::move(cmdline)), flags_(flags) {}
  int Execute() override {
    // cmdline_len counts the terminating NUL; unload passes no command line.
    unsigned long len = (flags_ & KEXEC_FILE_UNLOAD) ? 0 : cmdline_.size() + 1;
    return Finish(::syscall(SYS_kexec_file_load, kernel_fd_, initrd_fd_, len,
                            len ? cmdline_.c_str() : nullptr, flags_),
                  false);
  }

 private:
  int kernel_fd_, initrd_fd_;
  std::string cmdline_;
  unsigned long flags_;
};

// kexecFileLoad(kernelFd, initrdFd (-1: none), cmdline, flags)
std::unique_ptr<Call> MakeKexecFileLoad(const Napi::CallbackInfo& info) {
  return std::make_unique<KexecFileLoadCall>(IntArg(info, 0, "kernelFd"), IntArg(info, 1, "initrdFd"),
                                             StringArg(info, 2, "cmdline"),
                                             static_cast<unsigned>(IntArg(info, 3, "flags")));
}

class RebootCall : public SimpleCall {
 public:
  RebootCall() : SimpleCall("reboot", "") {}
  int Execute() override {
    return Finish(::syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                            LINUX_REBOOT_CMD_KEXEC, nullptr),
                  false);
  }
};

// reboot(LINUX_REBOOT_CMD_KEXEC): returns only by failing.
std::unique_ptr<Call> MakeRebootKexec(const Napi::CallbackInfo&) { return std::make_unique<RebootCall>(); }

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("O_RDONLY", O_RDONLY);
  c.Set("O_RDWR", O_RDWR);
  c.Set("FD_CLOEXEC", FD_CLOEXEC);
  c.Set("MFD_ALLOW_SEALING", MFD_ALLOW_SEALING);
  c.Set("F_SEAL_SEAL", F_SEAL_SEAL);
  c.Set("F_SEAL_SHRINK", F_SEAL_SHRINK);
  c.Set("F_SEAL_GROW", F_SEAL_GROW);
  c.Set("F_SEAL_WRITE", F_SEAL_WRITE);
  c.Set("F_SEAL_FUTURE_WRITE", F_SEAL_FUTURE_WRITE);
  c.Set("F_SEAL_EXEC", 0x0020);  // Linux 6.3; bookworm's headers lack it
  c.Set("KEXEC_FILE_UNLOAD", KEXEC_FILE_UNLOAD);
  c.Set("KEXEC_FILE_NO_INITRAMFS", KEXEC_FILE_NO_INITRAMFS);
  return c;
}

}  // namespace

void InitSyscalls(Napi::Env env, Napi::Object exports) {
  ExportCall<MakeOpen>(env, exports, "open");
  exports.Set("close", Napi::Function::New<RunAsync<MakeClose>>(env, "close"));
  exports.Set("closeSync", Napi::Function::New<CloseSync>(env, "closeSync"));
  ExportCall<MakeMemfdCreate>(env, exports, "memfdCreate");
  ExportCall<MakeAddSeals>(env, exports, "addSeals");
  ExportCall<MakeGetSeals>(env, exports, "getSeals");
  ExportCall<MakeGetFdFlags>(env, exports, "getFdFlags");
  ExportCall<MakeSetFdFlags>(env, exports, "setFdFlags");
  ExportCall<MakePipe>(env, exports, "pipe");
  ExportCall<MakeKexecFileLoad>(env, exports, "kexecFileLoad");
  ExportCall<MakeRebootKexec>(env, exports, "rebootKexec");
  exports.Set("constants", Constants(env));
}

}  // namespace luo
