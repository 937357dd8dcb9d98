{
  "targets": [
    {
      "target_name": "liveupdate",
      "sources": ["native/addon.cc", "native/ioctl.cc", "native/mmap.cc", "native/syscalls.cc", "native/unix.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "_GNU_SOURCE"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror"],
      "cflags_cc!": ["-std=gnu++17"],
      "conditions": [["OS!='linux'", {"type": "none"}]]
    }
  ]
}
