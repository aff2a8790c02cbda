{
  "targets": [
    {
      "target_name": "keel_native",
      "sources": [
        "init/native/keel_native.c",
        "init/native/common.c",
        "init/native/spawn.c",
        "init/native/spawn_opts.c",
        "init/native/container.c",
        "init/native/sockets.c",
        "init/native/listen.c",
        "init/native/poll.c",
        "init/native/signals.c",
        "init/native/pty.c",
        "init/native/console.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags!": ["-O3"],
      "cflags": ["-O2", "-Wall"],
      "cflags_c": ["-std=gnu11"]
    }
  ]
}
