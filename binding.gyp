{
  "targets": [
    {
      "target_name": "fsx",
      "sources": ["core/native/fsx.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
