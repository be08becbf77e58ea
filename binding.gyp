{
  "targets": [
    {
      "target_name": "send_body",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/send-body.c"] }]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
