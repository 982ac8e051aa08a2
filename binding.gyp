{
  "targets": [
    {
      "target_name": "fragstat",
      "sources": [
        "native/addon.cc",
        "native/detect.cc",
        "native/glibc.cc",
        "native/jemalloc.cc",
        "native/mimalloc.cc",
        "native/profile.cc",
        "native/rss.cc",
        "native/symbols.cc",
        "native/tcmalloc.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [
        ["OS!='linux'", { "sources!": [] }]
      ]
    }
  ]
}
