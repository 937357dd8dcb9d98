# The Python peer for `npm run bench` (issue 8): the same stage-1 sequences
# as bench/luo-bench.c, with the structs packed by hand and fcntl.ioctl, as
# a user without a binding would write them. Each loop runs once untimed at
# half its size first, as the Node side does. One JSON line per operation.
#
#   python3 bench/luo_bench.py SESSIONS FILES GETNAMES FLOOR
import fcntl
import json
import os
import struct
import sys
import time

CREATE_SESSION = 0xBA00
PRESERVE_FD = 0xBA40
GET_NAME = 0xBA43


def report(op, n, ns):
    print(json.dumps({"impl": "python", "op": op, "n": n, "ns": ns}), flush=True)


def timed(op, n, run):
    run(max(1, n // 2), "warm")
    time.sleep(0.2)  # settle, as bench/luo-bench.c does
    t = time.monotonic_ns()
    run(n, "timed")
    report(op, n, time.monotonic_ns() - t)


def create(dev, name):
    buf = bytearray(struct.pack("=Ii64s", 72, 0, name.encode()))
    fcntl.ioctl(dev, CREATE_SESSION, buf)
    return struct.unpack_from("=i", buf, 4)[0]


def main(sessions, files, getnames, floor):
    dev = os.open("/dev/liveupdate", os.O_RDWR | os.O_CLOEXEC)

    def create_close(n, tag):
        for i in range(n):
            os.close(create(dev, f"bench-py-{tag}-{i}"))

    timed("create-close", sessions, create_close)

    # The memfds are made before the clock starts, as in C.
    memfds = {tag: [os.memfd_create("bench") for _ in range(n)] for tag, n in (("warm", max(1, files // 2)), ("timed", files))}
    made = []

    def preserve(n, tag):
        s = create(dev, f"bench-py-preserve-{tag}")
        made.append(s)
        for i, fd in enumerate(memfds[tag]):
            fcntl.ioctl(s, PRESERVE_FD, struct.pack("=IiQ", 16, fd, i + 1))

    timed("preserve", files, preserve)
    s = made[-1]
    name = bytearray(72)

    def get_name(n, tag):
        for _ in range(n):
            struct.pack_into("=II", name, 0, 72, 0)
            fcntl.ioctl(s, GET_NAME, name)

    timed("get-name", getnames, get_name)
    for fd in made + memfds["warm"] + memfds["timed"]:
        os.close(fd)

    def fstat(n, tag):
        for _ in range(n):
            os.fstat(dev)

    timed("fstat", floor, fstat)

    def open_close(n, tag):
        for _ in range(n):
            os.close(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))

    timed("open-close", floor, open_close)
    os.close(dev)


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:5]))
