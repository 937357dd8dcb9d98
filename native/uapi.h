// The Live Update Orchestrator uAPI (Linux 7.2+ include/uapi/linux/liveupdate.h),
// defined here because build hosts (Debian bookworm: 6.1 headers) lack it.
// The static_asserts pin every struct to the kernel's layout, so a typo here
// fails the build instead of corrupting an ioctl.
#pragma once

#include <cstddef>
#include <cstdint>
#include <linux/ioctl.h>

namespace luo {

constexpr unsigned kIoctlType = 0xBA;
constexpr size_t kSessionNameLength = 64;  // including the NUL

// Every command is _IO(): the size travels in the struct, not the number.
constexpr unsigned long kCreateSession = _IO(kIoctlType, 0x00);
constexpr unsigned long kRetrieveSession = _IO(kIoctlType, 0x01);
constexpr unsigned long kSessionPreserveFd = _IO(kIoctlType, 0x40);
constexpr unsigned long kSessionRetrieveFd = _IO(kIoctlType, 0x41);
constexpr unsigned long kSessionFinish = _IO(kIoctlType, 0x42);
constexpr unsigned long kSessionGetName = _IO(kIoctlType, 0x43);

struct CreateSession {  // liveupdate_ioctl_create_session
  uint32_t size;
  int32_t fd;
  uint8_t name[kSessionNameLength];
};

struct RetrieveSession {  // liveupdate_ioctl_retrieve_session
  uint32_t size;
  int32_t fd;
  uint8_t name[kSessionNameLength];
};

struct SessionPreserveFd {  // liveupdate_session_preserve_fd
  uint32_t size;
  int32_t fd;
  alignas(8) uint64_t token;  // __aligned_u64
};

struct SessionRetrieveFd {  // liveupdate_session_retrieve_fd
  uint32_t size;
  int32_t fd;
  alignas(8) uint64_t token;
};

struct SessionFinish {  // liveupdate_session_finish
  uint32_t size;
  uint32_t reserved;
};

struct SessionGetName {  // liveupdate_session_get_name
  uint32_t size;
  uint32_t reserved;
  uint8_t name[kSessionNameLength];
};

static_assert(kCreateSession == 0xBA00 && kSessionGetName == 0xBA43);

static_assert(sizeof(CreateSession) == 72);
static_assert(offsetof(CreateSession, size) == 0);
static_assert(offsetof(CreateSession, fd) == 4);
static_assert(offsetof(CreateSession, name) == 8);

static_assert(sizeof(RetrieveSession) == 72);
static_assert(offsetof(RetrieveSession, fd) == 4);
static_assert(offsetof(RetrieveSession, name) == 8);

static_assert(sizeof(SessionPreserveFd) == 16);
static_assert(offsetof(SessionPreserveFd, fd) == 4);
static_assert(offsetof(SessionPreserveFd, token) == 8);

static_assert(sizeof(SessionRetrieveFd) == 16);
static_assert(offsetof(SessionRetrieveFd, fd) == 4);
static_assert(offsetof(SessionRetrieveFd, token) == 8);

static_assert(sizeof(SessionFinish) == 8);
static_assert(offsetof(SessionFinish, reserved) == 4);

static_assert(sizeof(SessionGetName) == 72);
static_assert(offsetof(SessionGetName, reserved) == 4);
static_assert(offsetof(SessionGetName, name) == 8);

}  // namespace luo
