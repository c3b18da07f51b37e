{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["core/native/fsx.c", "core/native/codec.c", "core/native/stat.c", "core/native/memory.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-Wl,-Bstatic", "-llz4", "-Wl,-Bdynamic", "-Wl,--exclude-libs,ALL"]
    }
  ]
}
