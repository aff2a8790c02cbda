{
  "targets": [
    {
      "target_name": "keel_native",
      "sources": [
        "native/src/keel_native.c",
        "native/src/common.c",
        "native/src/spawn.c",
        "native/src/spawn_opts.c",
        "native/src/container.c",
        "native/src/sandbox.c",
        "native/src/sockets.c",
        "native/src/listen.c",
        "native/src/poll.c",
        "native/src/signals.c",
        "native/src/pty.c",
        "native/src/console.c",
        "native/src/flock.c",
        "native/src/fs.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags!": ["-O3"],
      "cflags": ["-O2", "-Wall"],
      "cflags_c": ["-std=gnu11"]
    }
  ]
}
