{
  "targets": [
    {
      "target_name": "send_body",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/send-body.c"] }]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "reuse_port",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/reuse-port.c"] }]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "viewer_tls",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/viewer-tls.c"] }]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
