# In native/, not at the package root: a binding.gyp at the root makes npm, pnpm and Yarn run
# node-gyp at install. fragstat ships prebuilds instead (README, Install).
{
  "targets": [
    {
      "target_name": "fragstat",
      "sources": [
        "addon.cc",
        "arenatop.cc",
        "claim.cc",
        "detect.cc",
        "glibc.cc",
        "jemalloc.cc",
        "mimalloc.cc",
        "probe.cc",
        "profile.cc",
        "rss.cc",
        "symbols.cc",
        "tcmalloc.cc",
        "tunables.cc",
        "unknown.cc",
        "v8heap.cc"
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
